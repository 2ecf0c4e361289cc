import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a client without blocking the event loop: the gateway under test lives in this process,
 * so spawnSync would deadlock it.
 */
export function run(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

/** OpenSSH options for a throwaway loopback server: no host key checks, no keys from ~/.ssh. */
export const SSH_COMMON = ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR'];
export const SSH_PASSWORD = [...SSH_COMMON, '-o', 'BatchMode=no', '-o', 'PubkeyAuthentication=no', '-o', 'PreferredAuthentications=password', '-o', 'NumberOfPasswordPrompts=1'];
export const sshKeyOpts = (key: string) => [...SSH_COMMON, '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'PreferredAuthentications=publickey', '-i', key];

export interface Login {
  port: number;
  user: string;
  password?: string;
  key?: string;
  bind?: string;
}

function authArgs(l: Login): { cmd: string; pre: string[]; opts: string[] } {
  const opts = l.key ? sshKeyOpts(l.key) : SSH_PASSWORD;
  const bind = l.bind ? ['-o', `BindAddress=${l.bind}`] : [];
  return l.key ? { cmd: '', pre: [], opts: [...opts, ...bind] } : { cmd: 'sshpass', pre: ['-p', l.password!], opts: [...opts, ...bind] };
}

async function viaSshpass(l: Login, tool: string, args: string[], cwd?: string): Promise<RunResult> {
  const a = authArgs(l);
  return a.cmd ? run('sshpass', [...a.pre, tool, ...args], { cwd }) : run(tool, args, { cwd });
}

/** `sftp -b`: the batch stops at the first failing command and the exit code says so. */
export async function sftpBatch(l: Login, commands: string[], cwd?: string): Promise<RunResult> {
  const dir = await mkdtemp(join(tmpdir(), 'handoff-sftp-batch-'));
  const file = join(dir, 'batch');
  await writeFile(file, commands.join('\n') + '\n');
  const a = authArgs(l);
  return viaSshpass(l, 'sftp', [...a.opts, '-P', String(l.port), '-b', file, `${l.user}@127.0.0.1`], cwd);
}

export async function scp(l: Login, args: string[], cwd?: string): Promise<RunResult> {
  const a = authArgs(l);
  return viaSshpass(l, 'scp', [...a.opts, '-P', String(l.port), ...args], cwd);
}

export function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path).on('data', (c) => h.update(c)).on('end', () => resolve(h.digest('hex'))).on('error', reject);
  });
}
