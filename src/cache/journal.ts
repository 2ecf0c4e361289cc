import type { Database, Queryable } from '../db/Database.js';
import type { StorageBackend } from './backends/StorageBackend.js';

/**
 * Small files are made durable through the database's WAL instead of their own flushes. The
 * usual commit waits for three device flushes one after another (the blob's data, its folder
 * entry, then the WAL), and this disk runs flushes one at a time whatever their order: 0.64-0.89 ms
 * a file in a plain loop, most of a 4 KiB upload's time. For a file up to JOURNAL_MAX the commit's
 * transaction also stores its bytes (`journaled_blobs`), so the one WAL flush that makes the commit
 * durable makes the bytes durable too (0.31-0.55 ms a file in the same loop); the blob is renamed
 * into place unflushed, readers read it from the page cache like any blob, and the client is
 * answered after that WAL flush, as before. Every second or so the Settler flushes the storage's
 * file system once (one flush for every blob written since) and then drops those records. After a
 * crash, start-up recovery rewrites, from its record, every journaled blob that did not survive.
 */
export const JOURNAL_MAX = 256 * 1024;

/** A copy of an upload's bytes, as long as they arrive in order from 0 and stay small. */
export class SmallCopy {
  private parts: Buffer[] = [];
  private upTo = 0;
  private off = false;

  add(data: Buffer, position: number): void {
    if (this.off) return;
    if (position !== this.upTo || this.upTo + data.length > JOURNAL_MAX) return this.invalidate();
    // A copy: SFTP's and Node's buffers are recycled once written.
    this.parts.push(Buffer.from(data));
    this.upTo += data.length;
  }

  /** Any change the copy cannot follow (a truncate, a failed write). */
  invalidate(): void {
    this.off = true;
    this.parts = [];
  }

  /** The first `size` bytes, if the copy holds every one of them. */
  value(size: number): Buffer | null {
    if (this.off || this.upTo !== size) return null;
    return this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, size);
  }
}

interface JournalRow {
  id: number;
  file_id: number;
  event_id: string;
  blob: string;
  data: Buffer;
}

/** Inside the commit's transaction, so the bytes are durable exactly when the commit is. */
export async function journal(tx: Queryable, r: { fileId: number; eventId: string; blob: string; data: Buffer }, now: number): Promise<number> {
  return (await tx.run('INSERT INTO journaled_blobs (file_id, event_id, blob, data, created_at) VALUES (?, ?, ?, ?, ?)', [r.fileId, r.eventId, r.blob, r.data, now])).lastId;
}

/**
 * Makes journaled blobs durable in batches, then forgets their records: one file-system flush
 * covers every blob written before it began. Dropping records needs no flush of its own: a record
 * a power cut brings back only costs recovery one more comparison.
 */
export class Settler {
  private pending: number[] = [];
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  constructor(
    private readonly db: Database,
    private readonly storage: StorageBackend,
    private readonly onError: (err: unknown) => void,
    private readonly delayMs = 1000,
  ) {}

  journaled(id: number): void {
    this.pending.push(id);
    this.timer ??= setTimeout(() => void this.flush(), this.delayMs).unref();
  }

  /** Settles everything journaled so far (also at shutdown). */
  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const ids = this.pending.splice(0);
    const previous = this.running ?? Promise.resolve();
    if (ids.length === 0) return previous;
    const run = previous
      .then(async () => {
        await this.db.duringBulkFlush(() => this.storage.flushAll());
        await this.db.transaction(async (tx) => {
          for (let i = 0; i < ids.length; i += 200) {
            const part = ids.slice(i, i + 200);
            await tx.run(`DELETE FROM journaled_blobs WHERE id IN (${part.map(() => '?').join(', ')})`, part);
          }
        }, { durable: false });
      })
      // The records stay (recovery would compare those blobs once more) and the next batch tries again.
      .catch((err: unknown) => {
        this.pending.unshift(...ids);
        this.timer ??= setTimeout(() => void this.flush(), this.delayMs * 10).unref();
        this.onError(err);
      })
      .finally(() => {
        if (this.running === run) this.running = null;
      });
    this.running = run;
    return run;
  }
}

/**
 * Start-up recovery: every journaled blob still referenced by its file must hold its record's
 * bytes; one that does not (lost or torn in the crash) is written again, durably, from the record.
 * Returns the blobs rewritten (with `repair` false: that would be).
 */
export async function recoverJournaled(db: Database, storage: StorageBackend, repair: boolean): Promise<number> {
  let rewritten = 0;
  const rows = await db.query<JournalRow>('SELECT id, file_id, event_id, blob, data FROM journaled_blobs ORDER BY id');
  for (const row of rows) {
    // A file removed, replaced or purged since no longer needs this blob.
    const file = await db.get<{ blob: string | null }>(
      "SELECT f.blob FROM files f JOIN events e ON e.id = f.event_id WHERE f.id = ? AND f.event_id = ? AND f.state = 'complete' AND e.purged_at IS NULL",
      [row.file_id, row.event_id],
    );
    if (file?.blob !== row.blob || (await holds(storage, row))) continue;
    rewritten++;
    if (!repair) continue;
    const writer = await storage.openTemp(row.event_id, `journal-${row.id}`, true);
    try {
      await writer.writeAt(row.data, 0);
      await writer.commit(row.blob);
    } catch (err) {
      await writer.close().catch(() => undefined);
      throw err;
    }
  }
  if (repair && rows.length) {
    // After a crash of the process alone, a blob that reads back intact may still be only in the
    // page cache: flushed first, then its record goes.
    await storage.flushAll();
    await db.transaction(async (tx) => {
      for (const row of rows) await tx.run('DELETE FROM journaled_blobs WHERE id = ?', [row.id]);
    });
  }
  return rewritten;
}

async function holds(storage: StorageBackend, row: JournalRow): Promise<boolean> {
  let reader;
  try {
    reader = await storage.openReader(row.event_id, row.blob);
  } catch {
    return false;
  }
  try {
    if (reader.size !== row.data.length) return false;
    const buf = Buffer.allocUnsafe(row.data.length);
    let n = 0;
    while (n < buf.length) {
      const got = await reader.read(buf, n, buf.length - n, n);
      if (got === 0) return false;
      n += got;
    }
    return buf.equals(row.data);
  } finally {
    await reader.close().catch(() => undefined);
  }
}
