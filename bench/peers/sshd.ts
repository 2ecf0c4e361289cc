import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort, run, runOk, startService, waitForPort, which } from '../lib/proc.js';
import { failed, missing, type Peer } from './peer.js';

export interface Sshd {
  port: number;
  user: string;
  /** Private key accepted by this server only. */
  key: string;
  /** Where the peer's transfers land (absolute paths, the server runs unconfined). */
  root: string;
}

/** A second OpenSSH server on loopback: its own host key, internal-sftp, pubkey auth for a throwaway key. */
export async function startSshd(dir: string): Promise<Peer<Sshd>> {
  const bin = which('sshd');
  const keygen = which('ssh-keygen');
  if (!bin || !keygen) return missing('sshd', 'openssh-server');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const root = join(dir, 'files');
  await mkdir(root, { recursive: true });
  const hostKey = join(dir, 'host_ed25519');
  const key = join(dir, 'client_ed25519');
  await runOk(keygen, ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey], { timeoutMs: 10_000 });
  await runOk(keygen, ['-q', '-t', 'ed25519', '-N', '', '-f', key], { timeoutMs: 10_000 });
  const { readFile } = await import('node:fs/promises');
  await writeFile(join(dir, 'authorized_keys'), await readFile(`${key}.pub`, 'utf8'), { mode: 0o600 });
  // sshd insists on its privilege-separation folder (the Debian service creates it at boot).
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  const user = (await run('id', ['-un'], { timeoutMs: 5000 })).stdout.trim() || 'root';
  const port = await freePort();
  const conf = `
ListenAddress 127.0.0.1
Port ${port}
HostKey ${hostKey}
PidFile ${dir}/sshd.pid
AuthorizedKeysFile ${dir}/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers ${user}
StrictModes no
UsePAM no
UseDNS no
Subsystem sftp internal-sftp
LogLevel ERROR
`;
  const file = join(dir, 'sshd_config');
  await writeFile(file, conf);
  const svc = startService('sshd', bin, ['-D', '-e', '-f', file]);
  try {
    await waitForPort(port, svc, 10_000);
  } catch (err) {
    await svc.stop();
    return failed('sshd', err);
  }
  const v = await run(bin, ['-V'], { timeoutMs: 5000 });
  return { ok: true, svc, value: { port, user, key, root }, version: (v.stderr + v.stdout).trim().split('\n')[0] };
}
