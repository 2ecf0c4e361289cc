/**
 * Worker thread that checkpoints the SQLite WAL for the gateway's writer connection. A checkpoint
 * copies WAL frames into the database file and, at `synchronous=NORMAL`, fsyncs both files: on the
 * writer's own thread (SQLite's automatic checkpoint runs inside the COMMIT that crosses 1,000
 * pages) that stalled the event loop for a device flush every couple of hundred small uploads.
 * Here it stalls nobody; the writer keeps committing while a PASSIVE checkpoint runs.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type BetterSqlite3 from 'better-sqlite3';
import { requireNative } from '../shared/native.js';
import type { CheckpointReply, CheckpointRequest, CheckpointWorkerData } from './checkpointer.js';

const { file, restartBytes, delayMs, active: activeBuffer } = workerData as CheckpointWorkerData;
const active = new Int32Array(activeBuffer);
const port = parentPort!;
const Driver = requireNative<typeof BetterSqlite3>('better-sqlite3');
// A RESTART checkpoint waits for the writer's transaction to end; the writer meets SQLITE_BUSY
// meanwhile and retries without blocking its event loop (SqliteDatabase.begin).
const db = new Driver(file, { fileMustExist: true, timeout: 2000 });
db.pragma('synchronous = NORMAL');
db.pragma('wal_autocheckpoint = 0');

// A WAL frame is a 24-byte header and one page.
const frameBytes = (db.pragma('page_size', { simple: true }) as number) + 24;
/**
 * Frames in the WAL at the last checkpoint, which a restart sets back to the few written since.
 * Not the WAL file's size: SQLite reuses the file from its start after a restart and never
 * shrinks it, so once the file had grown past `restartBytes` (in the benchmark, during its first
 * small-file row) every later checkpoint was a RESTART, and each one made the writer wait and
 * retry. 4 KiB SFTP uploads with every checkpoint a RESTART: 407-452 files/s after warm-up against
 * 448-603 with this rule (two alternating pairs of gateways, 2026-12-08).
 */
let walFrames = 0;
let scheduled = false;

function checkpoint(): CheckpointReply {
  // PASSIVE never waits for anyone, but under a steady stream of commits it never catches up with
  // the end of the WAL, so the WAL is never restarted and grows. Past `restartBytes`, RESTART
  // waits for the writer once so that the next commit starts the WAL from its beginning again.
  const mode = walFrames * frameBytes > restartBytes ? 'RESTART' : 'PASSIVE';
  // Seen by the writer's thread at once: a lone commit then flushes on the pool, not inline.
  Atomics.store(active, 0, 1);
  try {
    const [r] = db.pragma(`wal_checkpoint(${mode})`) as Array<{ busy: number; log: number; checkpointed: number }>;
    // After a RESTART that finished, the next commit writes the WAL from its start again.
    walFrames = mode === 'RESTART' && r?.busy === 0 ? 0 : (r?.log ?? 0);
    return { kind: 'done', mode, frames: r?.checkpointed ?? 0, busy: r?.busy === 1 };
  } catch (err) {
    return { kind: 'done', mode, frames: 0, busy: true, error: (err as Error).message };
  } finally {
    Atomics.store(active, 0, 0);
  }
}

port.on('message', (msg: CheckpointRequest) => {
  if (msg === 'close') {
    db.close();
    port.close();
    return;
  }
  // Commits nudge at most once per reply; the delay lets a burst of them share one checkpoint.
  if (scheduled) return;
  scheduled = true;
  setTimeout(() => {
    scheduled = false;
    port.postMessage(checkpoint());
  }, delayMs);
});
