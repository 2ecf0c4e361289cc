import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Gateway } from '../../src/gateway.js';

export const CLI = resolve('dist/src/main.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A sandbox for the real `handoff` CLI: its own HOME and XDG folders under a temp dir. */
export interface SenderHome {
  root: string;
  env: NodeJS.ProcessEnv;
  run(args: string[], opts?: { input?: string; env?: NodeJS.ProcessEnv }): Promise<CliResult>;
  /** Pids of background uploaders holding a queue lock right now. */
  uploaderPids(): Promise<number[]>;
  /** Ends the uploaders this sandbox started (test cleanup). */
  cleanup(): Promise<void>;
}

export async function senderHome(extraEnv: NodeJS.ProcessEnv = {}): Promise<SenderHome> {
  const root = await mkdtemp(join(tmpdir(), 'handoff-sender-'));
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH, HOME: join(root, 'home'), XDG_CONFIG_HOME: join(root, 'config'), XDG_DATA_HOME: join(root, 'data'), ...extraEnv,
  };
  await mkdir(env.HOME!, { recursive: true });
  const queues = join(root, 'data', 'handoff', 'queues');
  const self: SenderHome = {
    root,
    env,
    run(args, opts = {}) {
      return new Promise((done, fail) => {
        const child = spawn(process.execPath, [CLI, ...args], { env: { ...env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d));
        child.stderr.on('data', (d: Buffer) => (stderr += d));
        child.on('error', fail);
        child.on('close', (code) => done({ code: code ?? -1, stdout, stderr }));
        child.stdin.end(opts.input ?? '');
      });
    },
    async uploaderPids() {
      const pids: number[] = [];
      for (const id of await readdir(queues).catch(() => [] as string[])) {
        try {
          const pid = (JSON.parse(await readFile(join(queues, id, 'lock'), 'utf8')) as { pid: number }).pid;
          process.kill(pid, 0);
          pids.push(pid);
        } catch {
          /* no lock or dead */
        }
      }
      return pids;
    },
    async cleanup() {
      for (const pid of await self.uploaderPids()) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      await rm(root, { recursive: true, force: true });
    },
  };
  return self;
}

/** A file of `mib` MiB of random-looking bytes, written fast (one random MiB, varied per block). */
export async function makeFile(path: string, bytes: number): Promise<string> {
  const block = randomBytes(1024 * 1024);
  const fh = await open(path, 'w');
  const h = createHash('sha256');
  try {
    for (let pos = 0, i = 0; pos < bytes; i++) {
      block.writeUInt32LE(i, 0);
      const n = Math.min(block.length, bytes - pos);
      const part = block.subarray(0, n);
      await fh.write(part, 0, n, pos);
      h.update(part);
      pos += n;
    }
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return h.digest('hex');
}

export async function waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 120_000, everyMs = 250): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * Counts the bytes the gateway really receives per file (every tus PATCH body written), by
 * observing its live-progress table: resent bytes show up as a total above the file size.
 */
export function countReceived(gateway: Gateway): Map<string, number> {
  const totals = new Map<string, number>();
  const last = new Map<string, number>();
  const live = gateway.live;
  const start = live.start.bind(live);
  const progress = live.progress.bind(live);
  live.start = (eventId, path, size, bytes) => {
    last.set(`${eventId}/${path}`, bytes);
    start(eventId, path, size, bytes);
  };
  live.progress = (eventId, path, bytes) => {
    const k = `${eventId}/${path}`;
    totals.set(k, (totals.get(k) ?? 0) + Math.max(0, bytes - (last.get(k) ?? 0)));
    last.set(k, bytes);
    progress(eventId, path, bytes);
  };
  return totals;
}

export function oneLine(s: string): boolean {
  return s.trim().length > 0 && s.trim().split('\n').length === 1;
}
