import type { Command } from 'commander';
import { ApiClient } from '../client/api.js';
import { reviveAll } from '../client/background.js';
import { resolveConnection } from '../client/profile.js';
import { parseDuration } from '../shared/duration.js';

/** A usage error (bad argument or option): one line on stderr, exit code 2 (CONTRACT). */
export class UsageError extends Error {
  override name = 'UsageError';
}

export interface ConnOptions {
  server?: string;
  token?: string;
  json?: boolean;
}

/** Adds --server/--token to a sender command. */
export function withConnection(cmd: Command): Command {
  return cmd
    .option('--server <url>', 'gateway address (or HANDOFF_SERVER, or the profile saved by "handoff login")')
    .option('--token <token>', 'API token (or HANDOFF_TOKEN, or the saved profile)');
}

/** Connection for a command; revives any dead uploader with work left first (cheap: a few file reads). */
export async function client(opts: ConnOptions, revive = true): Promise<ApiClient> {
  if (revive) await reviveAll().catch(() => undefined);
  return new ApiClient(await resolveConnection(opts));
}

export function eventArg(id: string): string {
  const v = id.trim().toLowerCase();
  if (!/^[a-z0-9]{26}$/.test(v)) throw new UsageError(`${id} is not an event id (26 letters and digits, see "handoff ls")`);
  return v;
}

export function expiresArg(text: string, option = '--expires'): string {
  if (parseDuration(text) !== null) return text;
  if (/^\d{4}-\d{2}-\d{2}/.test(text) && !Number.isNaN(Date.parse(text))) return text;
  throw new UsageError(`${option} ${text}: expected a duration like 90s, 12h, 7d or an ISO-8601 time`);
}

export function positiveIntArg(text: string, option: string): number {
  if (!/^\d{1,9}$/.test(text) || Number(text) < 1) throw new UsageError(`${option} ${text}: expected a positive whole number`);
  return Number(text);
}
