import type { Database, Queryable, SqlValue } from '../db/Database.js';
import type { Action } from '../auth/policy.js';

/** A lock as stored; `owner` is opaque text the protocol front-end wrote (WebDAV: the owner XML as JSON). */
export interface LockRecord {
  token: string;
  fileId: number | null;
  principal: string;
  scope: 'exclusive' | 'shared';
  depth: '0' | 'infinity';
  owner: string | null;
  /** null: no timeout. */
  timeoutMs: number | null;
  refreshedAt: number;
  provisional: boolean;
}

/** One dead property: a name and an opaque value, both chosen by the protocol front-end. */
export interface PropertyChange {
  name: string;
  /** null removes the property. */
  value: string | null;
}

interface LockRow {
  token: string;
  file_id: number | null;
  principal: string;
  scope: 'exclusive' | 'shared';
  depth: '0' | 'infinity';
  owner: string | null;
  timeout_ms: number | null;
  refreshed_at: number;
  provisional: number;
}

const CHUNK = 400;
/** Map key for a node: its file id, or 'root'. */
export const nodeKey = (fileId: number | null): string => (fileId === null ? 'root' : String(fileId));

function lockOf(r: LockRow): LockRecord {
  return {
    token: r.token, fileId: r.file_id, principal: r.principal, scope: r.scope, depth: r.depth, owner: r.owner,
    timeoutMs: r.timeout_ms, refreshedAt: r.refreshed_at, provisional: r.provisional === 1,
  };
}

/**
 * Locks and dead properties of an event's nodes, in the database so every gateway node sees the
 * same ones. Rows follow the file row: a rename keeps them, a delete cascades them away.
 * Opened by FileSession, which passes its policy check; lookups are batched for big listings.
 */
export class NodeMetadata {
  constructor(
    private readonly db: Database,
    private readonly eventId: string,
    private readonly can: (action: Action) => void,
  ) {}

  private async batched<T extends object>(table: string, columns: string, ids: Array<number | null>): Promise<T[]> {
    const out: T[] = [];
    const real = [...new Set(ids.filter((i): i is number => i !== null))];
    if (ids.includes(null)) out.push(...(await this.db.query<T>(`SELECT ${columns} FROM ${table} WHERE event_id = ? AND file_id IS NULL`, [this.eventId])));
    for (let i = 0; i < real.length; i += CHUNK) {
      const part = real.slice(i, i + CHUNK);
      out.push(...(await this.db.query<T>(`SELECT ${columns} FROM ${table} WHERE event_id = ? AND file_id IN (${part.map(() => '?').join(', ')})`, [this.eventId, ...part])));
    }
    return out;
  }

  /** Whether any node of the event holds a lock, expired ones included (the quick WebDAV PUT runs only without). */
  async anyLock(): Promise<boolean> {
    this.can('list');
    return (await this.db.get('SELECT 1 AS held FROM dav_locks WHERE event_id = ? LIMIT 1', [this.eventId])) !== undefined;
  }

  /** Locks on each node (expired ones included: the caller decides, and deletes them). */
  async locksOn(ids: Array<number | null>): Promise<Map<string, LockRecord[]>> {
    this.can('list');
    const map = new Map<string, LockRecord[]>(ids.map((i) => [nodeKey(i), []]));
    for (const r of await this.batched<LockRow>('dav_locks', '*', ids)) map.get(nodeKey(r.file_id))?.push(lockOf(r));
    return map;
  }

  async saveLock(l: LockRecord): Promise<void> {
    this.can('lock');
    const params: SqlValue[] = [this.eventId, l.fileId, l.principal, l.scope, l.depth, l.owner, l.timeoutMs, l.refreshedAt, l.provisional ? 1 : 0];
    await this.db.transaction(async (tx) => {
      const r = await tx.run(
        'UPDATE dav_locks SET event_id = ?, file_id = ?, principal = ?, scope = ?, depth = ?, owner = ?, timeout_ms = ?, refreshed_at = ?, provisional = ? WHERE token = ?',
        [...params, l.token],
      );
      if (r.changes === 0) {
        await tx.run(
          'INSERT INTO dav_locks (event_id, file_id, principal, scope, depth, owner, timeout_ms, refreshed_at, provisional, token) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
          [...params, l.token],
        );
      }
    });
  }

  async deleteLock(token: string): Promise<void> {
    this.can('lock');
    await this.db.run('DELETE FROM dav_locks WHERE event_id = ? AND token = ?', [this.eventId, token]);
  }

  /** A moved node does not take its locks along (RFC 4918 §9.9.4). */
  async dropLocks(fileId: number): Promise<void> {
    this.can('write');
    await this.db.run('DELETE FROM dav_locks WHERE event_id = ? AND file_id = ?', [this.eventId, fileId]);
  }

  async propertiesOf(ids: Array<number | null>): Promise<Map<string, Map<string, string>>> {
    this.can('list');
    const map = new Map<string, Map<string, string>>(ids.map((i) => [nodeKey(i), new Map()]));
    const rows = await this.batched<{ file_id: number | null; name: string; value: string }>('dav_properties', 'file_id, name, value', ids);
    for (const r of rows) map.get(nodeKey(r.file_id))?.set(r.name, r.value);
    return map;
  }

  /** Applies every change or none. */
  async patchProperties(fileId: number | null, changes: PropertyChange[]): Promise<void> {
    this.can('write');
    await this.db.transaction(async (tx) => {
      for (const c of changes) {
        await this.deleteProperty(tx, fileId, c.name);
        if (c.value !== null) {
          await tx.run('INSERT INTO dav_properties (event_id, file_id, name, value) VALUES (?, ?, ?, ?)', [this.eventId, fileId, c.name, c.value]);
        }
      }
    });
  }

  private deleteProperty(tx: Queryable, fileId: number | null, name: string) {
    return fileId === null
      ? tx.run('DELETE FROM dav_properties WHERE event_id = ? AND file_id IS NULL AND name = ?', [this.eventId, name])
      : tx.run('DELETE FROM dav_properties WHERE event_id = ? AND file_id = ? AND name = ?', [this.eventId, fileId, name]);
  }

  /** COPY takes dead properties along. */
  async copyProperties(from: number | null, to: number): Promise<void> {
    this.can('write');
    const props = (await this.propertiesOf([from])).get(nodeKey(from))!;
    if (props.size === 0) return;
    await this.patchProperties(to, [...props].map(([name, value]) => ({ name, value })));
  }
}
