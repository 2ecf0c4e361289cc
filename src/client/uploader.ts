import { unlink } from 'node:fs/promises';
import { ApiClient, ApiError } from './api.js';
import { hashFile } from './hash.js';
import { UploaderLock } from './lock.js';
import { isTerminal, type Queue, type QueueFile, type QueueState } from './queue.js';
import { FileChangedError } from './source.js';
import { RateLimiter } from './throttle.js';
import { AttemptError } from './attemptError.js';
import type { RunningAttempt } from './tusUpload.js';

const CHUNK = 32 * 1024 * 1024; // each PATCH is acknowledged durably: a hard gateway crash loses at most one chunk
const BACKOFF_MAX_MS = 30_000;

export type UploaderOutcome = 'finished' | 'locked' | 'stopped' | 'lost';

function envInt(name: string, fallback: number): number {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? Math.floor(v) : fallback;
}

/**
 * Drains one event's queue: several files at once (HANDOFF_UPLOAD_CONCURRENCY, default 3), each
 * hashed, announced if needed, then sent with tus from the server's offset. Transient failures
 * (gateway down or restarting, 5xx) wait with exponential backoff and retry until the event
 * expires; others fail the file with a reason. State is saved so a killed process resumes.
 */
export class Uploader {
  state!: QueueState;
  private readonly lock: UploaderLock;
  private readonly active = new Map<string, { attempt: RunningAttempt | null; hashing: AbortController | null }>();
  private readonly limiter = RateLimiter.fromEnv();
  private readonly concurrency = envInt('HANDOFF_UPLOAD_CONCURRENCY', 3);
  private stopping = false;
  private wake: (() => void) | null = null;
  private dirty = true;

  constructor(private readonly queue: Queue, private readonly log: (line: string) => void = () => undefined) {
    this.lock = new UploaderLock(queue.lockFile);
  }

  async run(): Promise<UploaderOutcome> {
    if (!(await this.lock.acquire())) return 'locked';
    try {
      const state = await this.queue.read();
      if (!state) return 'finished';
      this.state = state;
      for (const f of state.files) if (f.state === 'hashing' || f.state === 'uploading') f.state = 'queued';
      this.state.uploader = { pid: process.pid, state: 'running', updatedAt: Date.now(), rate: this.limiter?.bytesPerSecond ?? 0 };
      for (;;) {
        const outcome = await this.loop();
        if (outcome !== 'finished') return outcome;
        this.state.uploader.state = 'finished';
        await this.save(true);
        await this.lock.release();
        // Files added between our last look and the release would otherwise wait for the next command.
        if ((await this.queue.incoming()).length === 0 || !(await this.lock.acquire())) return 'finished';
        this.state.uploader.state = 'running';
      }
    } finally {
      await this.lock.release();
    }
  }

  /** Ctrl-C or SIGTERM: abort transfers without terminating them on the server, save, return. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const a of this.active.values()) {
      a.hashing?.abort();
      await a.attempt?.abort().catch(() => undefined);
    }
    this.wake?.();
  }

  private async loop(): Promise<UploaderOutcome> {
    let lastLockCheck = Date.now();
    for (;;) {
      await this.mergeIncoming();
      if (this.stopping) {
        await this.drain();
        this.state.uploader.state = 'stopped';
        await this.save(true);
        return 'stopped';
      }
      if (Date.now() - lastLockCheck > 2000) {
        lastLockCheck = Date.now();
        if (!(await this.lock.stillHeld())) {
          await this.stop();
          await this.drain();
          return 'lost';
        }
      }
      const now = Date.now();
      for (const f of this.state.files) {
        if (this.active.size >= this.concurrency) break;
        if (this.active.has(f.path)) continue;
        if (f.state === 'queued' || (f.state === 'retrying' && (f.nextAttemptAt ?? 0) <= now)) this.begin(f);
      }
      const pending = this.state.files.filter((f) => !isTerminal(f));
      if (pending.length === 0 && this.active.size === 0) return 'finished';
      this.state.uploader.state = this.active.size === 0 ? 'waiting' : 'running';
      await this.save(false);
      const nextRetry = Math.min(...pending.filter((f) => f.state === 'retrying').map((f) => f.nextAttemptAt ?? now), now + 1000);
      await this.sleep(Math.max(50, Math.min(1000, nextRetry - now)));
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => ((this.wake = null), resolve()), ms);
      this.wake = () => (clearTimeout(t), (this.wake = null), resolve());
    });
  }

  private async drain(): Promise<void> {
    while (this.active.size > 0) await this.sleep(50);
  }

  private async mergeIncoming(): Promise<void> {
    for (const batch of await this.queue.incoming()) {
      for (const f of batch.files) {
        const i = this.state.files.findIndex((x) => x.path === f.path);
        if (i < 0) this.state.files.push(f);
        else if (!this.active.has(f.path)) this.state.files[i] = f;
        else {
          // A newer version of a file in flight (mount overwrite): stop the old one, queue the new.
          const a = this.active.get(f.path)!;
          await a.attempt?.abort().catch(() => undefined);
          this.state.files[i] = f;
        }
      }
      this.dirty = true;
      await this.queue.dropIncoming(batch.name);
    }
  }

  private begin(f: QueueFile): void {
    const slot = { attempt: null as RunningAttempt | null, hashing: null as AbortController | null };
    this.active.set(f.path, slot);
    this.attempt(f, slot)
      .catch((err) => this.log(`${f.path}: unexpected ${(err as Error).stack ?? err}`))
      .finally(() => {
        this.active.delete(f.path);
        this.dirty = true;
        this.wake?.();
      });
  }

  private async attempt(f: QueueFile, slot: { attempt: RunningAttempt | null; hashing: AbortController | null }): Promise<void> {
    f.attempts++;
    f.nextAttemptAt = null;
    const startBytes = f.bytes;
    const api = new ApiClient({ server: this.state.server, token: this.state.token });
    try {
      if (!f.sha256) {
        f.state = 'hashing';
        this.dirty = true;
        slot.hashing = new AbortController();
        f.sha256 = await hashFile(f, slot.hashing.signal);
        slot.hashing = null;
      }
      if (this.stopping) throw new AttemptError('stopped', true, 0);
      if (f.announce) {
        await api.announce(this.state.eventId, [{ path: f.path, size: f.size, sha256: f.sha256 }]).catch((err: unknown) => {
          if (!(err instanceof ApiError && err.status === 409 && /already in the event/.test(err.message))) throw err;
        });
        f.announce = false;
      }
      f.state = 'uploading';
      this.dirty = true;
      this.log(`${f.path}: ${f.uploadUrl ? 'resuming' : 'starting'} (attempt ${f.attempts})`);
      // tus-js-client loads only when bytes move: `send` itself prints the addresses sooner.
      const { startAttempt } = await import('./tusUpload.js');
      slot.attempt = startAttempt({
        endpoint: api.uploadEndpoint(this.state.eventId), server: this.state.server, token: this.state.token, file: f, limiter: this.limiter, chunkSize: CHUNK,
        onUrl: (url) => {
          if (f.uploadUrl !== url) (f.uploadUrl = url), (this.dirty = true), void this.save(true);
        },
        onProgress: (bytes) => {
          f.bytes = bytes;
          this.dirty = true;
        },
      });
      await slot.attempt.done;
      f.state = 'done';
      f.bytes = f.size;
      f.error = null;
      this.log(`${f.path}: complete`);
      if (f.spooled) await unlink(f.localPath).catch(() => undefined);
    } catch (err) {
      const { message, transient } = describeFailure(err);
      if (this.stopping) {
        f.state = 'queued';
        return;
      }
      if (transient && !this.expired()) {
        if (f.bytes > startBytes) f.attempts = 1; // progress was made: start the backoff over
        const delay = Math.min(BACKOFF_MAX_MS, 1000 * 2 ** Math.min(f.attempts - 1, 10)) * (0.75 + Math.random() * 0.5);
        f.state = 'retrying';
        f.nextAttemptAt = Date.now() + Math.round(delay);
        f.error = message;
        this.log(`${f.path}: ${message}; retrying in ${Math.round(delay / 1000)} s`);
      } else {
        f.state = 'failed';
        f.error = transient ? `${message}; the event has expired` : message;
        this.log(`${f.path}: failed: ${f.error}`);
      }
    } finally {
      this.dirty = true;
    }
  }

  private expired(): boolean {
    return this.state.expiresAt !== null && Date.parse(this.state.expiresAt) <= Date.now();
  }

  private saving: Promise<void> = Promise.resolve();

  /** Serialised: the loop and the upload-URL callback may both ask at once. */
  private save(force: boolean): Promise<void> {
    if (!force && !this.dirty && Date.now() - this.state.uploader.updatedAt < 5000) return this.saving;
    this.dirty = false;
    this.saving = this.saving.then(() => {
      this.state.uploader.updatedAt = Date.now();
      return this.queue.write(this.state);
    }).catch((err: unknown) => this.log(`saving the queue failed: ${(err as Error).message}`));
    return this.saving;
  }
}

function describeFailure(err: unknown): { message: string; transient: boolean } {
  if (err instanceof AttemptError) return { message: err.message, transient: err.transient };
  if (err instanceof ApiError) return { message: err.message, transient: err.transient };
  if (err instanceof FileChangedError) return { message: err.message, transient: false };
  if ((err as Error)?.name === 'AbortError') return { message: 'stopped', transient: true };
  return { message: (err as Error)?.message ?? String(err), transient: false };
}
