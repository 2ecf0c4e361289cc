import { randomBytes } from 'node:crypto';
import { readFile, unlink, writeFile } from 'node:fs/promises';

interface LockBody {
  pid: number;
  nonce: string;
  at: number;
}

/** Is this pid alive and one of our uploaders (not a recycled pid after a reboot)? */
export async function isUploaderAlive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const args = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
    return args.includes('__uploader') || ((args.includes('send') || args.includes('add')) && args.includes('--wait'));
  } catch {
    return true; // no /proc (macOS): trust the pid
  }
}

async function readLock(file: string): Promise<LockBody | null> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as LockBody;
  } catch {
    return null;
  }
}

export async function lockHolder(file: string): Promise<number | null> {
  const body = await readLock(file);
  if (!body) return null;
  return (await isUploaderAlive(body.pid)) ? body.pid : null;
}

/**
 * One uploader per queue: an O_EXCL lock file naming its pid. A lock whose pid is dead is taken
 * over. Two processes taking over the same stale lock at once is possible in a narrow window, so
 * the holder re-checks `stillHeld()` on every heartbeat and stops when it lost; the gateway's
 * per-upload offset check keeps even that moment from mixing bytes.
 */
export class UploaderLock {
  private readonly nonce = randomBytes(8).toString('hex');
  constructor(private readonly file: string) {}

  async acquire(): Promise<boolean> {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await writeFile(this.file, JSON.stringify({ pid: process.pid, nonce: this.nonce, at: Date.now() } satisfies LockBody), { flag: 'wx', mode: 0o600 });
        return true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const body = await readLock(this.file);
      if (body && body.pid !== process.pid && (await isUploaderAlive(body.pid))) return false;
      if (body && body.pid === process.pid && body.nonce !== this.nonce) return false;
      await unlink(this.file).catch(() => undefined);
    }
    return false;
  }

  async stillHeld(): Promise<boolean> {
    const body = await readLock(this.file);
    return body?.nonce === this.nonce;
  }

  async release(): Promise<void> {
    if (await this.stillHeld()) await unlink(this.file).catch(() => undefined);
  }
}
