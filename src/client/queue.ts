import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dataDir } from './profile.js';

/** One file in an event's upload queue, as the uploader sees it. */
export interface QueueFile {
  path: string;
  localPath: string;
  /** What the file looked like when it was announced: any difference later means it changed. */
  size: number;
  mtimeMs: number;
  sha256: string | null;
  uploadUrl: string | null;
  state: 'queued' | 'hashing' | 'uploading' | 'retrying' | 'done' | 'failed' | 'cancelled';
  bytes: number;
  error: string | null;
  attempts: number;
  nextAttemptAt: number | null;
  /** A spool copy (from `mount`): deleted once uploaded. */
  spooled: boolean;
  /** Not yet in the server's manifest: the uploader announces it first. */
  announce: boolean;
}

export interface QueueState {
  version: 1;
  eventId: string;
  server: string;
  token: string;
  expiresAt: string | null;
  files: QueueFile[];
  uploader: { pid: number; state: 'running' | 'waiting' | 'stopped' | 'finished'; updatedAt: number; rate: number };
}

export function newQueueFile(f: { path: string; localPath: string; size: number; mtimeMs: number }, extra: Partial<QueueFile> = {}): QueueFile {
  return {
    path: f.path, localPath: f.localPath, size: f.size, mtimeMs: f.mtimeMs, sha256: null, uploadUrl: null, state: 'queued', bytes: 0,
    error: null, attempts: 0, nextAttemptAt: null, spooled: false, announce: false, ...extra,
  };
}

export const queuesRoot = () => join(dataDir(), 'queues');

/**
 * An event's queue folder: `queue.json` (written only by the lock holder, atomically), `incoming/`
 * (files added by `add` or `mount` while an uploader may run; the uploader merges them), `lock`,
 * `uploader.log` and `spool/`.
 */
export class Queue {
  readonly dir: string;
  constructor(readonly eventId: string) {
    if (!/^[a-z0-9]{10,64}$/.test(eventId)) throw new Error(`bad event id ${eventId}`);
    this.dir = join(queuesRoot(), eventId);
  }

  get stateFile(): string {
    return join(this.dir, 'queue.json');
  }
  get lockFile(): string {
    return join(this.dir, 'lock');
  }
  get logFile(): string {
    return join(this.dir, 'uploader.log');
  }
  get spoolDir(): string {
    return join(this.dir, 'spool');
  }
  private get incomingDir(): string {
    return join(this.dir, 'incoming');
  }

  async ensure(): Promise<void> {
    await mkdir(this.incomingDir, { recursive: true, mode: 0o700 });
    await mkdir(this.spoolDir, { recursive: true, mode: 0o700 });
    await chmod(this.dir, 0o700).catch(() => undefined);
  }

  async read(): Promise<QueueState | null> {
    try {
      return JSON.parse(await readFile(this.stateFile, 'utf8')) as QueueState;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  /** Temp file, fsync, rename: a kill or power cut leaves the old or the new state, never half of one. Mode 0600: it holds the token. */
  async write(state: QueueState): Promise<void> {
    const tmp = `${this.stateFile}.${process.pid}.tmp`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(JSON.stringify(state));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.stateFile);
  }

  /** Hands new files to whichever uploader runs (or the next one). */
  async enqueue(files: QueueFile[]): Promise<void> {
    await this.ensure();
    const name = `${Date.now()}-${randomBytes(6).toString('hex')}.json`;
    const tmp = join(this.incomingDir, `.${name}`);
    await writeFile(tmp, JSON.stringify(files), { mode: 0o600 });
    await rename(tmp, join(this.incomingDir, name));
  }

  async incoming(): Promise<Array<{ name: string; files: QueueFile[] }>> {
    let names: string[];
    try {
      names = (await readdir(this.incomingDir)).filter((n) => n.endsWith('.json') && !n.startsWith('.')).sort();
    } catch {
      return [];
    }
    const out = [];
    for (const name of names) {
      try {
        out.push({ name, files: JSON.parse(await readFile(join(this.incomingDir, name), 'utf8')) as QueueFile[] });
      } catch {
        /* being written or already merged */
      }
    }
    return out;
  }

  async dropIncoming(name: string): Promise<void> {
    await unlink(join(this.incomingDir, name)).catch(() => undefined);
  }
}

export async function listQueues(): Promise<Queue[]> {
  let names: string[];
  try {
    names = await readdir(queuesRoot());
  } catch {
    return [];
  }
  return names.filter((n) => /^[a-z0-9]{10,64}$/.test(n)).map((n) => new Queue(n));
}

export const isTerminal = (f: QueueFile) => f.state === 'done' || f.state === 'failed' || f.state === 'cancelled';

/** Work left: anything not done, failed or cancelled, or additions not merged yet. */
export async function hasPendingWork(q: Queue): Promise<boolean> {
  const state = await q.read();
  if (state && state.files.some((f) => !isTerminal(f))) return true;
  return (await q.incoming()).length > 0;
}
