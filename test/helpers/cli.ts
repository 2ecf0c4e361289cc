import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Gateway } from '../../src/gateway.js';
import { packageRoot } from '../../src/shared/packageRoot.js';

export const MAIN = join(packageRoot(), 'dist', 'src', 'main.js');

export interface SyncCliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function cli(args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): SyncCliResult {
  const r = spawnSync(process.execPath, [MAIN, ...args], { input: opts.input ?? '', env: { ...process.env, ...opts.env }, cwd: opts.cwd, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Starts `handoff serve` as a child and resolves once it printed its listening lines. */
export async function serveChild(configFile: string, opts: { env?: NodeJS.ProcessEnv; cwd?: string; waitFor?: RegExp } = {}): Promise<{ child: ChildProcess; url: string; output: () => string }> {
  const child = spawn(process.execPath, [MAIN, 'serve', '--config', configFile], { env: { ...process.env, ...opts.env }, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${out}`)), 20_000);
    const check = () => {
      const m = /http listening on (\S+)/.exec(out);
      if (m && (!opts.waitFor || opts.waitFor.test(out))) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout!.on('data', check);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited with ${code}: ${out}`));
    });
  });
  return { child, url, output: () => out };
}


export const CLI = MAIN;

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
  live.start = (eventId, path, uploadId, size, bytes) => {
    last.set(`${eventId}/${path}`, bytes);
    start(eventId, path, uploadId, size, bytes);
  };
  live.progress = (eventId, path, uploadId, bytes) => {
    const k = `${eventId}/${path}`;
    totals.set(k, (totals.get(k) ?? 0) + Math.max(0, bytes - (last.get(k) ?? 0)));
    last.set(k, bytes);
    progress(eventId, path, uploadId, bytes);
  };
  return totals;
}

export function oneLine(s: string): boolean {
  return s.trim().length > 0 && s.trim().split('\n').length === 1;
}
