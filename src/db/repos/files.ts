import type { Queryable } from '../Database.js';
import type { FileRow, FileState, NodeKind } from './rows.js';

export interface NewFile {
  event_id: string;
  path: string;
  parent: string;
  name: string;
  kind: NodeKind;
  size: number | null;
  sha256: string | null;
  state: FileState;
  now: number;
}

export class FilesRepo {
  constructor(private readonly db: Queryable) {}

  byPath(eventId: string, path: string): Promise<FileRow | undefined> {
    return this.db.get<FileRow>('SELECT * FROM files WHERE event_id = ? AND path = ?', [eventId, path]);
  }

  /** The rows of many paths in a few queries (manifest checks), keyed by path. */
  async byPaths(eventId: string, paths: string[]): Promise<Map<string, FileRow>> {
    const out = new Map<string, FileRow>();
    for (let i = 0; i < paths.length; i += 500) {
      const chunk = paths.slice(i, i + 500);
      const rows = await this.db.query<FileRow>(`SELECT * FROM files WHERE event_id = ? AND path IN (${chunk.map(() => '?').join(',')})`, [eventId, ...chunk]);
      for (const r of rows) out.set(r.path, r);
    }
    return out;
  }

  byId(id: number): Promise<FileRow | undefined> {
    return this.db.get<FileRow>('SELECT * FROM files WHERE id = ?', [id]);
  }

  /** One page of a folder's children in name order; `after` is the last name of the previous page. */
  children(eventId: string, parent: string, after: string | null, limit: number): Promise<FileRow[]> {
    return after === null
      ? this.db.query<FileRow>('SELECT * FROM files WHERE event_id = ? AND parent = ? AND state <> ? ORDER BY name LIMIT ?', [eventId, parent, 'removed', limit])
      : this.db.query<FileRow>('SELECT * FROM files WHERE event_id = ? AND parent = ? AND name > ? AND state <> ? ORDER BY name LIMIT ?', [
          eventId, parent, after, 'removed', limit,
        ]);
  }

  /** Every file (not folder) of an event in path order: manifest listings, zips. */
  allFiles(eventId: string): Promise<FileRow[]> {
    return this.db.query<FileRow>("SELECT * FROM files WHERE event_id = ? AND kind = 'file' AND state <> 'removed' ORDER BY path", [eventId]);
  }

  /** Rows at or below `path` (segment-wise: the path itself or 'path/...'). */
  subtree(eventId: string, path: string): Promise<FileRow[]> {
    return this.db.query<FileRow>("SELECT * FROM files WHERE event_id = ? AND (path = ? OR substr(path, 1, ?) = ?) ORDER BY path", [
      eventId, path, path.length + 1, path + '/',
    ]);
  }

  async insert(f: NewFile): Promise<number> {
    const r = await this.db.run(
      `INSERT INTO files (event_id, path, parent, name, kind, size, sha256, state, mtime, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [f.event_id, f.path, f.parent, f.name, f.kind, f.size, f.sha256, f.state, f.now, f.now, f.now],
    );
    return r.lastId;
  }

  /** A file that arrives complete in one step (an unannounced upload's commit); returns its row. */
  async insertComplete(f: Omit<NewFile, 'kind' | 'state'> & Pick<FileRow, 'blob' | 'bytes' | 'actual_sha256' | 'mtime' | 'updated_at'>): Promise<FileRow> {
    const rows = await this.db.query<FileRow>(
      `INSERT INTO files (event_id, path, parent, name, kind, size, sha256, state, blob, bytes, actual_sha256, mtime, created_at, updated_at)
       VALUES (?, ?, ?, ?, 'file', ?, ?, 'complete', ?, ?, ?, ?, ?, ?) RETURNING *`,
      [f.event_id, f.path, f.parent, f.name, f.size, f.sha256, f.blob, f.bytes, f.actual_sha256, f.mtime, f.now, f.updated_at],
    );
    return rows[0]!;
  }

  async update(id: number, fields: Partial<Omit<FileRow, 'id' | 'event_id'>>): Promise<void> {
    const keys = Object.keys(fields) as Array<keyof typeof fields>;
    if (keys.length === 0) return;
    await this.db.run(`UPDATE files SET ${keys.map((k) => `${k} = ?`).join(', ')} WHERE id = ?`, [...keys.map((k) => fields[k] ?? null), id]);
  }

  async remove(id: number): Promise<void> {
    await this.db.run('DELETE FROM files WHERE id = ?', [id]);
  }

  async countFiles(eventId: string): Promise<number> {
    const r = await this.db.get<{ n: number }>("SELECT COUNT(*) AS n FROM files WHERE event_id = ? AND kind = 'file'", [eventId]);
    return r?.n ?? 0;
  }
}
