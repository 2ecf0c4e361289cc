import { spawnSync } from 'node:child_process';

/** Is a command on PATH? Tests needing a missing tool skip with a message naming its Debian package. */
export function hasTool(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}
