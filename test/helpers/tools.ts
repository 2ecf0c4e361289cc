import { spawnSync } from 'node:child_process';

const seen = new Map<string, boolean>();

/** Is a command on PATH? Tests that need a missing tool pass with a message naming its package. */
export function hasTool(name: string): boolean {
  if (!seen.has(name)) seen.set(name, spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0);
  return seen.get(name)!;
}
