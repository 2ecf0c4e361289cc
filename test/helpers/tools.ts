import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Is a command on PATH (or an absolute path present)? Tests skip with the Debian package's name when not. */
export function hasTool(name: string): boolean {
  if (name.startsWith('/')) return existsSync(name);
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}
