import type { Database, Queryable } from '../db/Database.js';
import type { UploadRow } from '../db/repos/rows.js';
import type { Logger } from '../shared/log.js';
import type { StorageBackend } from './backends/StorageBackend.js';

/**
 * Steps shared by start-up recovery and the retention job. Each one is idempotent and works in the
 * order "database first, then storage": a crash between the two leaves only storage that no row
 * points at, and `sweepStorage` (run by every job and at every start) removes exactly that. So a
 * step interrupted anywhere is finished by the next run, never left half-done.
 */
export interface ReconcileDeps {
  db: Database;
  storage: StorageBackend;
  log: Logger;
}

export interface SweepResult {
  tempsRemoved: number;
  orphanBlobs: number;
  containersRemoved: number;
  bytes: number;
}

/** Drops an unfinished upload: row, reservation and `uploading` state in one transaction, then its temp. */
export async function dropUpload(deps: ReconcileDeps, upload: UploadRow, now = Date.now()): Promise<number> {
  await deps.db.transaction(async (tx) => {
    const r = await tx.run('DELETE FROM uploads WHERE id = ? AND completed_at IS NULL', [upload.id]);
    if (r.changes !== 1) return;
    await tx.run('UPDATE events SET reserved_bytes = MAX(0, reserved_bytes - ?) WHERE id = ?', [upload.reserved, upload.event_id]);
    const others = await tx.get<{ n: number }>('SELECT COUNT(*) AS n FROM uploads WHERE event_id = ? AND path = ? AND completed_at IS NULL', [upload.event_id, upload.path]);
    if (!others?.n) await resetFileState(tx, upload.event_id, upload.path, now);
  });
  const size = (await deps.storage.tempSize(upload.event_id, upload.id)) ?? 0;
  await deps.storage.discardTemp(upload.event_id, upload.id).catch(() => undefined);
  return size;
}

/** A file stuck `uploading` goes back to `pending` when announced, or disappears when it never was (as Transfer.fail does). */
async function resetFileState(tx: Queryable, eventId: string, path: string, now: number): Promise<number> {
  const a = await tx.run("UPDATE files SET state = 'pending', bytes = 0, updated_at = ? WHERE event_id = ? AND path = ? AND state = 'uploading' AND size IS NOT NULL", [now, eventId, path]);
  const b = await tx.run("DELETE FROM files WHERE event_id = ? AND path = ? AND state = 'uploading' AND size IS NULL", [eventId, path]);
  return a.changes + b.changes;
}

/**
 * Files `uploading` with no open upload row (crash between the two writes of a failing upload, or
 * every non-resumable upload after a restart). `olderThan` protects the millisecond gap at run time.
 */
export async function resetStuckStates(deps: ReconcileDeps, olderThan: number, repair: boolean, now = Date.now()): Promise<number> {
  const rows = await deps.db.query<{ event_id: string; path: string }>(
    `SELECT f.event_id, f.path FROM files f WHERE f.state = 'uploading' AND f.updated_at <= ?
       AND NOT EXISTS (SELECT 1 FROM uploads u WHERE u.event_id = f.event_id AND u.path = f.path AND u.completed_at IS NULL)`,
    [olderThan],
  );
  if (!repair || rows.length === 0) return rows.length;
  let n = 0;
  await deps.db.transaction(async (tx) => {
    for (const r of rows) n += await resetFileState(tx, r.event_id, r.path, now);
  });
  return n;
}

/** Longer than any spare waits (spareTemps.ts). */
const EMPTY_BLOB_GRACE_MS = 15 * 60_000;

/**
 * Storage nobody points at, older than `olderThan` (so an upload committing right now, whose blob
 * is renamed just before its row commits, is never taken): temps without an open upload row, blobs
 * without a file row, containers of purged or unknown events.
 */
export async function sweepStorage(deps: ReconcileDeps, olderThan: number, repair: boolean): Promise<SweepResult> {
  const out: SweepResult = { tempsRemoved: 0, orphanBlobs: 0, containersRemoved: 0, bytes: 0 };
  for (const c of await deps.storage.listContainers()) {
    const event = await deps.db.get<{ purged_at: number | null }>('SELECT purged_at FROM events WHERE id = ?', [c.name]);
    if (!event || event.purged_at !== null) {
      // An event being created makes its container just before its row: leave young ones alone.
      if (!event && c.mtimeMs > olderThan) continue;
      const items = [...(await deps.storage.listBlobs(c.name)), ...(await deps.storage.listTempItems(c.name))];
      out.containersRemoved++;
      out.bytes += items.reduce((n, i) => n + i.size, 0);
      if (repair) await deps.storage.removeContainer(c.name);
      continue;
    }
    const open = new Set((await deps.db.query<{ id: string }>('SELECT id FROM uploads WHERE event_id = ? AND completed_at IS NULL', [c.name])).map((u) => u.id));
    for (const t of await deps.storage.listTempItems(c.name)) {
      if (open.has(t.name) || t.mtimeMs > olderThan) continue;
      out.tempsRemoved++;
      out.bytes += t.size;
      if (repair) await deps.storage.discardTemp(c.name, t.name).catch(() => undefined);
    }
    const referenced = new Set(
      (await deps.db.query<{ blob: string }>('SELECT blob FROM files WHERE event_id = ? AND blob IS NOT NULL', [c.name])).map((f) => f.blob),
    );
    for (const b of await deps.storage.listBlobs(c.name)) {
      if (referenced.has(b.name) || b.mtimeMs > olderThan) continue;
      // An empty one may be a spare another node sharing this storage holds (spareTemps.ts: made
      // among the blobs, none older than a few minutes); it costs nothing to leave it a while.
      if (b.size === 0 && b.mtimeMs > Date.now() - EMPTY_BLOB_GRACE_MS) continue;
      out.orphanBlobs++;
      out.bytes += b.size;
      if (repair) await deps.storage.removeBlob(c.name, b.name).catch(() => undefined);
    }
  }
  return out;
}

/** used_bytes = Σ complete files, reserved_bytes = Σ open reservations; one statement, so it cannot race a commit. */
export async function recomputeQuota(deps: ReconcileDeps, repair: boolean): Promise<number> {
  const used = "(SELECT COALESCE(SUM(f.bytes), 0) FROM files f WHERE f.event_id = events.id AND f.kind = 'file' AND f.state = 'complete')";
  const reserved = '(SELECT COALESCE(SUM(u.reserved), 0) FROM uploads u WHERE u.event_id = events.id AND u.completed_at IS NULL)';
  const where = `used_bytes <> ${used} OR reserved_bytes <> ${reserved}`;
  if (!repair) return (await deps.db.get<{ n: number }>(`SELECT COUNT(*) AS n FROM events WHERE ${where}`))?.n ?? 0;
  return (await deps.db.run(`UPDATE events SET used_bytes = ${used}, reserved_bytes = ${reserved} WHERE ${where}`)).changes;
}
