import { GatewayError } from '../shared/errors.js';
import { ConfigError } from '../config/load.js';

/** A user error: one line on stderr saying what to do, exit code 1 (CONTRACT). */
export class UserError extends Error {
  override name = 'UserError';
}

export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

export function print(line: string): void {
  process.stdout.write(line + '\n');
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** Maps any error to the CONTRACT exit codes: 1 for what the user can fix, and still 1 (with a log hint) for the rest. */
export function exitWith(err: unknown): never {
  if (err instanceof UserError || err instanceof ConfigError || err instanceof GatewayError) {
    process.stderr.write(`handoff: ${err.message}\n`);
    process.exit(1);
  }
  process.stderr.write(`handoff: unexpected error: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
}
