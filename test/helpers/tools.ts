import { spawnSync } from 'node:child_process';

/** Is a system tool on PATH? Tests that need one skip with a message naming its Debian package. */
export function hasTool(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

export function missingToolMessage(tool: string, pkg = tool): string {
  return `skipped: ${tool} is not installed (Debian package ${pkg})`;
}
