import { spawnSync } from 'node:child_process';

/** Is a command on PATH? Tests that need a missing tool pass with a message naming its Debian package. */
export function hasTool(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

export function missingToolMessage(tool: string, pkg = tool): string {
  return `skipped: ${tool} is not installed (Debian package ${pkg})`;
}
