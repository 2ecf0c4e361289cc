import type { Database } from '../db/Database.js';

/** How long an event's free bytes serve pre-checks before they are read again. */
const FRESH_MS = 1000;
/** Events remembered per database (one entry per event receiving uploads). */
const KEPT = 256;

const views = new WeakMap<Database, Map<string, { at: number; free: number }>>();

/**
 * An event's free bytes (quota minus used and reserved) for an upload's quota pre-checks (a
 * declared length, the ceiling of a stream), read at most once a second per event rather than
 * once per upload: SFTP's `put *` of
 * small files read the event row for every file (39 µs each, the first read after the previous
 * commit). Only a pre-check uses it: the commit checks the quota exactly, in its transaction.
 * This process's commits update it; space freed here (a delete, a bigger quota) is forgotten at
 * once; changes made elsewhere (another node) show within a second.
 */
export async function freeBytes(db: Database, eventId: string): Promise<number> {
  let seen = views.get(db);
  if (!seen) views.set(db, (seen = new Map()));
  const now = Date.now();
  const hit = seen.get(eventId);
  if (hit && now - hit.at < FRESH_MS) return hit.free;
  const e = await db.get<{ free: number }>('SELECT quota_bytes - used_bytes - reserved_bytes AS free FROM events WHERE id = ?', [eventId]);
  const free = e?.free ?? 0;
  seen.delete(eventId);
  if (seen.size >= KEPT) seen.delete(seen.keys().next().value!);
  seen.set(eventId, { at: now, free });
  return free;
}

/** A commit here used `bytes` more of the event (negative: freed): kept exact between reads. */
export function usedFreeBytes(db: Database, eventId: string, bytes: number): void {
  const hit = views.get(db)?.get(eventId);
  if (hit) hit.free -= bytes;
}

/** Space was freed in `eventId` (or its quota raised): the next pre-check reads it. */
export function forgetFreeBytes(db: Database, eventId: string): void {
  views.get(db)?.delete(eventId);
}
