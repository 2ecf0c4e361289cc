import { Readable } from 'node:stream';
import type { Queryable } from '../db/Database.js';
import { FilesRepo } from '../db/repos/files.js';
import type { UploadRow } from '../db/repos/rows.js';
import { GatewayError } from '../shared/errors.js';
import type { BlobReader } from './backends/StorageBackend.js';
import type { CacheDeps } from './deps.js';
import type { LiveSignal } from './live.js';

export interface FollowLimits {
  /** How long a download of a `pending` file waits for its upload to start. */
  pendingWaitMs: number;
  /** How long a follower waits without a new byte before it gives up. */
  stallMs: number;
}

const POLL_MS = 500;

/** The newest unfinished upload into `path`, if any. */
export function activeUpload(db: Queryable, eventId: string, path: string): Promise<UploadRow | undefined> {
  return db.get<UploadRow>('SELECT * FROM uploads WHERE event_id = ? AND path = ? AND completed_at IS NULL ORDER BY updated_at DESC LIMIT 1', [eventId, path]);
}

/**
 * Reads a file while it is still uploading: bytes already stored come at once, later ones as they
 * arrive, until the upload commits (then `read` returns 0 at the final size). If the upload fails,
 * is aborted or stalls, `read` throws, so a front-end can cut its response instead of ending a
 * truncated file as if it were whole.
 */
export class FollowRead {
  private final: number | null = null;
  private failure: GatewayError | null = null;
  private known: number;
  private lastProgress = Date.now();
  private wake: (() => void) | null = null;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly deps: CacheDeps,
    private readonly eventId: string,
    private readonly path: string,
    readonly upload: UploadRow,
    private readonly reader: BlobReader,
    private readonly limits: FollowLimits,
  ) {
    this.known = Math.max(upload.offset_bytes, this.liveBytes() ?? 0);
    this.unsubscribe = deps.live.subscribe(eventId, path, (s) => this.onSignal(s));
  }

  /** Total size when the uploader declared it (tus Upload-Length, Content-Length). */
  get declaredSize(): number | null {
    return this.upload.length;
  }

  private liveBytes(): number | null {
    const cur = this.deps.live.current(this.eventId, this.path);
    return cur && cur.uploadId === this.upload.id ? cur.bytes : null;
  }

  private onSignal(s: LiveSignal): void {
    if (s.uploadId !== this.upload.id) return;
    if (s.kind === 'progress' && s.bytes > this.known) {
      this.known = s.bytes;
      this.lastProgress = Date.now();
    } else if (s.kind === 'rewind') this.known = Math.min(this.known, s.bytes);
    else if (s.kind === 'end' && (s.outcome === 'failed' || s.outcome === 'aborted')) {
      this.failure = new GatewayError('conflict', `the upload of ${this.path} was ${s.outcome === 'failed' ? 'rejected' : 'aborted'}`);
    }
    this.wake?.();
  }

  /** Looks at the database for what signals cannot tell: commits and failures seen by another path. */
  private async poll(): Promise<void> {
    const row = await new FilesRepo(this.deps.db).byPath(this.eventId, this.path);
    const upload = await this.deps.db.get<UploadRow>('SELECT * FROM uploads WHERE id = ?', [this.upload.id]);
    if (upload?.completed_at || (!upload && row?.state === 'complete')) {
      this.final = row?.state === 'complete' ? row.bytes : (upload?.offset_bytes ?? this.known);
      return;
    }
    if (!upload) {
      this.failure ??= new GatewayError('conflict', `the upload of ${this.path} ended without completing`);
      return;
    }
    if (upload.offset_bytes > this.known) {
      this.known = upload.offset_bytes;
      this.lastProgress = Date.now();
    }
  }

  private waitForChange(): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, POLL_MS);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    }).then(() => {
      this.wake = null;
    });
  }

  async read(buffer: Buffer, offset: number, length: number, position: number): Promise<number> {
    for (;;) {
      if (this.failure) throw this.failure;
      const limit = this.final ?? this.known;
      if (position < limit) {
        const n = await this.reader.read(buffer, offset, Math.min(length, limit - position), position);
        if (n > 0) return n;
      } else if (this.final !== null) return 0;
      if (Date.now() - this.lastProgress > this.limits.stallMs) throw new GatewayError('conflict', `the upload of ${this.path} stalled`);
      await this.waitForChange();
      await this.poll();
    }
  }

  async close(): Promise<void> {
    this.unsubscribe();
    this.wake?.();
    await this.reader.close().catch(() => undefined);
  }
}

/** Waits (bounded) for a `pending` file's upload to begin; false when it did not. */
export async function waitForUploadStart(deps: CacheDeps, eventId: string, path: string, waitMs: number): Promise<UploadRow | null> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const up = await activeUpload(deps.db, eventId, path);
    if (up) return up;
    const remaining = deadline - Date.now();
    if (remaining <= 0) return null;
    await new Promise<void>((resolve) => {
      const off = deps.bus.on((e) => {
        if (e.type === 'file.state' && e.eventId === eventId && e.path === path) finish();
      });
      const timer = setTimeout(finish, Math.min(remaining, POLL_MS * 4));
      function finish() {
        off();
        clearTimeout(timer);
        resolve();
      }
    });
  }
}

/** A Readable over a FollowRead: ends at the committed size, errors if the upload does not complete. */
export function followStream(follow: FollowRead, chunk = 1024 * 1024): Readable {
  let position = 0;
  return new Readable({
    highWaterMark: chunk,
    read() {
      const buf = Buffer.allocUnsafe(chunk);
      follow.read(buf, 0, chunk, position).then(
        (n) => {
          if (n === 0) {
            if (follow.declaredSize !== null && position !== follow.declaredSize) this.destroy(new GatewayError('conflict', 'upload ended short'));
            else this.push(null);
            return;
          }
          position += n;
          this.push(buf.subarray(0, n));
        },
        (err: unknown) => this.destroy(err as Error),
      );
    },
    destroy(err, cb) {
      void follow.close();
      cb(err);
    },
  });
}
