import ssh2 from 'ssh2';
import type { ConnectConfig, SFTPWrapper } from 'ssh2';

/** A Node ssh2 client for probes that OpenSSH cannot express (pipelined writes, forwarding, raw handles). */
export async function connect(cfg: ConnectConfig): Promise<ssh2.Client> {
  const c = new ssh2.Client();
  // ssh2 may emit more than one error for one failed connect: keep a listener for the client's life.
  c.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    c.once('ready', () => resolve());
    c.once('error', reject);
    c.connect({ host: '127.0.0.1', readyTimeout: 20_000, ...cfg });
  });
  return c;
}

export function openSftp(c: ssh2.Client): Promise<SFTPWrapper> {
  return new Promise((resolve, reject) => c.sftp((err, s) => (err ? reject(err) : resolve(s))));
}

/** Promisifies one callback-style SFTPWrapper call. */
export function call<T = void>(fn: (cb: (err: Error | null | undefined, value?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value as T))));
}

export function closed(c: ssh2.Client): Promise<void> {
  return new Promise((resolve) => c.once('close', () => resolve()));
}
