import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GATEWAY_MALLOC_ENV, GATEWAY_NODE_FLAGS } from '../src/shared/runtimeTuning.js';
import { basicAuth, HttpClient } from './lib/http.js';
import { runOk, startService, waitForLine, type Service } from './lib/proc.js';

/** The gateway runs as deployed (src/shared/runtimeTuning.ts) unless BENCH_GATEWAY_TUNING=off, for an A/B. */
const tuned = () => process.env.BENCH_GATEWAY_TUNING !== 'off';

/** Node flags for the gateway child, plus extra ones when investigating (e.g. BENCH_GATEWAY_NODE_ARGS=--cpu-prof; BENCH_GATEWAY_LOG=FILE keeps its output). */
function nodeArgs(): string[] {
  return [...(tuned() ? GATEWAY_NODE_FLAGS : []), ...(process.env.BENCH_GATEWAY_NODE_ARGS ?? '').split(' ').filter(Boolean)];
}

/** `BENCH_GATEWAY_ENV="NAME=value NAME2=value"`: variables for the gateway process only (malloc tuning and the like), not the peers. */
function gatewayEnv(): Record<string, string> {
  const pairs = (process.env.BENCH_GATEWAY_ENV ?? '').split(' ').filter(Boolean).map((kv) => kv.split('=', 2) as [string, string]);
  return { ...(tuned() ? GATEWAY_MALLOC_ENV : {}), ...Object.fromEntries(pairs.filter(([k, v]) => k && v !== undefined)) };
}

export interface BenchAccount {
  name: string;
  password: string;
  token: string;
}

export interface BenchGateway {
  svc: Service;
  pid: number;
  url: string;
  sftpPort: number | null;
  admin: BenchAccount;
  sender: BenchAccount;
  http: HttpClient;
  api<T>(method: string, path: string, body?: unknown, token?: string): Promise<T>;
  metrics(): Promise<{ argon2Verifications: number }>;
  stop(): Promise<void>;
}

/**
 * The gateway as users run it: `handoff serve` in a child process with the production argon2
 * parameters (the defaults), OS-chosen ports, accounts made with the CLI.
 */
export async function startGateway(root: string, dir: string): Promise<BenchGateway> {
  const main = join(root, 'dist', 'src', 'main.js');
  await mkdir(dir, { recursive: true });
  const config = join(dir, 'config.json');
  await writeFile(config, JSON.stringify({ dataDir: join(dir, 'data'), http: { port: 0 }, sftp: { port: 0 }, log: { level: 'warn' } }, null, 2));
  const cli = (args: string[], input?: string) => runOk(process.execPath, [main, ...args, '--config', config], { input, timeoutMs: 60_000, cwd: dir });
  const account = async (name: string, role: 'admin' | 'sender'): Promise<BenchAccount> => {
    const password = `bench-${role}-${Math.random().toString(36).slice(2)}-pass`;
    await cli(['user', 'add', name, '--role', role, '--password-stdin'], password);
    const token = (await cli(['token', 'create', name])).stdout.trim().split('\n').pop()!.trim();
    return { name, password, token };
  };
  const admin = await account('bench-admin', 'admin');
  const sender = await account('bench-sender', 'sender');

  const svc = startService('gateway', process.execPath, [...nodeArgs(), main, 'serve', '--config', config], { cwd: dir, env: { ...process.env, NODE_ENV: 'production', ...gatewayEnv() } });
  // The whole output, for --trace-gc and the like (the service keeps only its last 16 KiB).
  const logTo = process.env.BENCH_GATEWAY_LOG;
  if (logTo) {
    const log = createWriteStream(logTo);
    svc.child.stdout?.on('data', (b: Buffer) => log.write(b));
    svc.child.stderr?.on('data', (b: Buffer) => log.write(b));
  }
  const url = (await waitForLine(svc, /http listening on (http:\/\/\S+)/, 30_000))[1];
  // Every "listening" line precedes the admin-panel line, so an SFTP port (once built) is known by then.
  let sftpPort: number | null = null;
  const banner = await waitForLine(svc, /admin panel: /, 15_000).then(
    () => svc.output(),
    () => svc.output(),
  );
  const m = /sftp listening on [\d.]+:(\d+)/.exec(banner);
  if (m) sftpPort = Number(m[1]);

  const http = new HttpClient();
  const api = async <T>(method: string, path: string, body?: unknown, token = sender.token): Promise<T> => {
    const r = await http.request(url + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (r.status >= 300) throw new Error(`${method} ${path}: HTTP ${r.status} ${r.body.toString().slice(0, 300)}`);
    return (r.body.length ? JSON.parse(r.body.toString()) : null) as T;
  };
  return {
    svc,
    pid: svc.child.pid!,
    url,
    sftpPort,
    admin,
    sender,
    http,
    api,
    metrics: () => api('GET', '/api/v1/metrics', undefined, admin.token),
    async stop() {
      http.close();
      await svc.stop();
    },
  };
}

export interface BenchEvent {
  id: string;
  recipient: { username: string; password: string } | null;
}

/** An event with a manifest (so its quota fits what the scenario uploads) and optionally one recipient. */
export async function createEvent(g: BenchGateway, title: string, files: Array<{ path: string; size: number }>, withRecipient = false): Promise<BenchEvent> {
  const r = await g.api<{ id: string; recipients: Array<{ username: string; password: string }> }>('POST', '/api/v1/events', {
    title,
    files,
    recipients: withRecipient ? [{ name: 'bench' }] : undefined,
  });
  return { id: r.id, recipient: withRecipient ? r.recipients[0] : null };
}

export function senderBasic(g: BenchGateway): string {
  return basicAuth(g.sender.name, g.sender.password);
}
