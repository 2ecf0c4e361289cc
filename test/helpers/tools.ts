import { spawnSync } from 'node:child_process';

/** Is this command on PATH? Tests that need a missing tool skip with a message naming its package. */
export function hasTool(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}
