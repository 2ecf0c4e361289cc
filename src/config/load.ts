import { readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { packageRoot } from '../shared/packageRoot.js';
import { configSchema, type Config } from './schema.js';

export type { Config };

/** A start-up error whose message is the one line shown to the operator. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function isObject(v: unknown): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deep merge for plain objects; arrays and scalars in `over` replace those in `base`. */
export function merge(base: Json, over: Json): Json {
  if (!isObject(base) || !isObject(over)) return over;
  const out: Record<string, Json> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = k in base ? merge(base[k], v) : v;
  return out;
}

export function defaultConfigJson(): Json {
  return JSON.parse(readFileSync(join(packageRoot(), 'config', 'default.json'), 'utf8')) as Json;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const key = issue.path.join('.');
  if (issue.code === 'unrecognized_keys') {
    const names = issue.keys.map((k) => (key ? `${key}.${k}` : k));
    return `config: unknown key ${names.join(', ')}`;
  }
  return `config: ${key || '(root)'}: ${issue.message}`;
}

/** Validates and resolves relative paths against `cwd`; throws ConfigError with one line naming the key. */
export function parseConfig(overrides: Json, cwd = process.cwd()): Config {
  const merged = merge(defaultConfigJson(), overrides ?? {});
  const result = configSchema.safeParse(merged);
  if (!result.success) throw new ConfigError(describeIssue(result.error.issues[0]));
  const cfg = result.data;
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(cwd, p));
  cfg.dataDir = abs(cfg.dataDir);
  cfg.storage.root = abs(cfg.storage.root ?? join(cfg.dataDir, 'storage'));
  cfg.database.file = abs(cfg.database.file ?? join(cfg.dataDir, 'handoff.db'));
  cfg.sftp.hostKeys = cfg.sftp.hostKeys.map(abs);
  if (cfg.http.tls.cert) cfg.http.tls.cert = abs(cfg.http.tls.cert);
  if (cfg.http.tls.key) cfg.http.tls.key = abs(cfg.http.tls.key);
  if (Boolean(cfg.http.tls.cert) !== Boolean(cfg.http.tls.key)) {
    throw new ConfigError('config: http.tls: cert and key must be set together');
  }
  if (cfg.http.tls.redirectPort !== null && !cfg.http.tls.cert) {
    throw new ConfigError('config: http.tls.redirectPort: needs http.tls.cert and http.tls.key (it redirects to HTTPS)');
  }
  return cfg;
}

/** `--config FILE` or HANDOFF_CONFIG, merged over config/default.json. */
export function loadConfig(file?: string, env: NodeJS.ProcessEnv = process.env): Config {
  const path = file ?? env.HANDOFF_CONFIG;
  let overrides: Json = {};
  if (path) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      throw new ConfigError(`config: cannot read ${path}`);
    }
    try {
      overrides = JSON.parse(text) as Json;
    } catch (err) {
      throw new ConfigError(`config: ${path} is not valid JSON (${(err as Error).message})`);
    }
    if (!isObject(overrides)) throw new ConfigError(`config: ${path} must hold a JSON object`);
  }
  return parseConfig(overrides);
}
