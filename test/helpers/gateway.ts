import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import { Gateway, type GatewayOptions } from '../../src/gateway.js';
import { createLogger } from '../../src/shared/log.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface Account {
  name: string;
  password: string;
  token: string;
}

export interface ApiResponse<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export interface TestGateway {
  gateway: Gateway;
  /** http://127.0.0.1:PORT */
  url: string;
  dataDir: string;
  sender(name?: string): Promise<Account>;
  admin(name?: string): Promise<Account>;
  api<T = any>(token: string, method: string, path: string, body?: unknown): Promise<ApiResponse<T>>;
  stop(): Promise<void>;
}

/** Cheap argon2 parameters: tests exercise the logic; the benchmark measures production cost. */
export const TEST_CONFIG: Json = {
  http: { port: 0 },
  sftp: { port: 0 },
  auth: { argon2: { memoryCost: 1024, timeCost: 1, parallelism: 1 } },
  log: { level: 'warn' },
};

function mergeJson(a: Json, b: Json): Json {
  if (typeof a !== 'object' || a === null || Array.isArray(a) || typeof b !== 'object' || b === null || Array.isArray(b)) return b;
  const out: Record<string, Json> = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = k in a ? mergeJson(a[k], v) : v;
  return out;
}

let counter = 0;

/** A whole gateway on OS-chosen loopback ports in a temp dataDir; stop it in `after.always`. */
export async function startTestGateway(overrides: Json = {}, opts: { dataDir?: string; gateway?: Omit<GatewayOptions, 'log'> } = {}): Promise<TestGateway> {
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'handoff-test-')));
  const config = parseConfig(mergeJson(mergeJson(TEST_CONFIG, { dataDir }), overrides));
  const gateway = await Gateway.create(config, { ...opts.gateway, log: createLogger(config.log.level) });
  try {
    await gateway.start();
  } catch (err) {
    // A half-started gateway (HTTP up, SFTP refused) would keep the test worker alive forever.
    await gateway.stop(0).catch(() => undefined);
    throw err;
  }
  const url = gateway.httpUrl;

  const account = async (role: 'admin' | 'sender', name?: string): Promise<Account> => {
    const n = name ?? `${role}${++counter}`;
    const password = `pw-${n}-${Math.random().toString(36).slice(2)}-long`;
    await gateway.accounts.add(n, role, password);
    return { name: n, password, token: await gateway.accounts.createToken(n) };
  };

  return {
    gateway,
    url,
    dataDir,
    sender: (name) => account('sender', name),
    admin: (name) => account('admin', name),
    async api(token, method, path, body) {
      const res = await fetch(url + path, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {
        /* not JSON */
      }
      return { status: res.status, body: parsed as any, headers: res.headers };
    },
    async stop() {
      await gateway.stop(1000);
      if (!opts.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export function basic(user: string, pass: string): string {
  return 'Basic ' + Buffer.from(`${user}:${pass}`).toString('base64');
}
