import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';

/** Where an executable is on PATH (plus the sbin folders a non-login root shell may lack), or null. */
export function which(name: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin', '/usr/bin'];
  for (const d of dirs) {
    const p = join(d, name);
    if (d && existsSync(p)) return p;
  }
  return null;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
  seconds: number;
}

/** Runs a command to completion with a hard time limit; never throws for a non-zero exit. */
export function run(cmd: string, args: string[], opts: { input?: string; timeoutMs: number; cwd?: string; env?: NodeJS.ProcessEnv }): Promise<RunResult> {
  return new Promise((resolve) => {
    const start = process.hrtime.bigint();
    const child = execFile(cmd, args, { timeout: opts.timeoutMs, maxBuffer: 64 * 1024 * 1024, cwd: opts.cwd, env: opts.env, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ stdout: String(stdout), stderr: String(stderr) + (err && code === -1 ? ` (${err.message})` : ''), code, seconds });
    });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    else child.stdin?.end();
  });
}

/** Like run(), but a non-zero exit is an error naming the command and its stderr. */
export async function runOk(cmd: string, args: string[], opts: { input?: string; timeoutMs: number; cwd?: string; env?: NodeJS.ProcessEnv }): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.slice(0, 3).join(' ')}… exited ${r.code}: ${r.stderr.trim().slice(-400)}`);
  return r;
}

/** A port the OS considers free right now (peers that cannot bind port 0 and report it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** A long-running child whose output is kept (bounded) for error messages. */
export interface Service {
  name: string;
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

export function startService(name: string, cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Service {
  const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (b: Buffer) => {
    out = (out + b.toString()).slice(-16384);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  child.on('error', (err) => keep(Buffer.from(`spawn error: ${err.message}\n`)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    name,
    child,
    output: () => out,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** Resolves with the first stdout line matching `re` (its match), or rejects after `timeoutMs` or on exit. */
export function waitForLine(svc: Service, re: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (b: Buffer) => {
      buf += b.toString();
      const m = buf.match(re);
      if (m) finish(() => resolve(m));
    };
    const onExit = () => finish(() => reject(new Error(`${svc.name} exited before printing ${re}: ${svc.output().slice(-800)}`)));
    const timer = setTimeout(() => finish(() => reject(new Error(`${svc.name} did not print ${re} within ${timeoutMs} ms`))), timeoutMs);
    const finish = (f: () => void) => {
      clearTimeout(timer);
      svc.child.stdout!.off('data', onData);
      svc.child.off('exit', onExit);
      f();
    };
    svc.child.stdout!.on('data', onData);
    svc.child.once('exit', onExit);
  });
}

/** Polls until connecting to the port succeeds (peers that announce nothing). */
export async function waitForPort(port: number, svc: Service, timeoutMs: number): Promise<void> {
  const { connect } = await import('node:net');
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (svc.child.exitCode !== null) throw new Error(`${svc.name} exited: ${svc.output().slice(-800)}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${svc.name} did not listen on ${port} within ${timeoutMs} ms: ${svc.output().slice(-800)}`);
}

export interface ProcSample {
  /** Peak resident set since the last resetPeak, bytes. */
  hwmBytes: number;
  /** User + system CPU consumed so far, seconds. */
  cpuSeconds: number;
}

const TICKS = 100; // USER_HZ on Linux

/** Peak RSS (VmHWM) and CPU time of a process, from procfs. */
export async function sample(pid: number): Promise<ProcSample> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpu = (Number(fields[11]) + Number(fields[12])) / TICKS; // utime, stime (fields 14, 15)
  return { hwmBytes: hwm, cpuSeconds: cpu };
}

/** Resets VmHWM to the current RSS (clear_refs "5"), so each scenario reports its own peak. */
export async function resetPeak(pid: number): Promise<void> {
  await writeFile(`/proc/${pid}/clear_refs`, '5').catch(() => undefined);
}
