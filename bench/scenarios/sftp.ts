import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createEvent } from '../gateway.js';
import type { Metric } from '../lib/bench.js';
import { makeSmallFiles } from '../lib/files.js';
import { run, which } from '../lib/proc.js';
import { mbps, median } from '../lib/stats.js';
import type { Sshd } from '../peers/sshd.js';
import { one, peerSide, type Ctx } from './context.js';

export const SFTP_METRICS: Metric[] = [
  { key: 'sftp-upload-1g', unit: 'MB/s', note: 'OpenSSH sftp -b -B 261120 -R 64, aes128-gcm, vs OpenSSH internal-sftp' },
  { key: 'sftp-download-1g', unit: 'MB/s', note: 'same client' },
  { key: 'sftp-small-x2000', unit: 'files/s', note: '4 KiB files, one session (put *)' },
  { key: 'sftp-small-x2000-fsync', unit: 'files/s', note: 'same with put -f: OpenSSH fsyncs each file too' },
];

/**
 * One OpenSSH `sftp -b` session against either server, with the same options and cipher for both
 * (only the authentication differs: the gateway's sender password via sshpass, the peer's key).
 */
interface Target {
  name: string;
  run(batch: string[], timeoutMs: number): Promise<number>;
  /** Seconds a session costs with nothing to do (connect, key exchange, auth), subtracted from transfers. */
  overhead: number;
}

/**
 * 261120 rather than 262144: a 256 KiB WRITE plus its header exceeds the OpenSSH client's own 256 KiB
 * message cap ("Outbound message too long") unless the server's limits@openssh.com lowers -B, and
 * servers without that extension get the requested size as is. 261120 is what OpenSSH's server
 * advertises, so both sides see identical requests.
 */
const COMMON = ['-F', '/dev/null', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o', 'Ciphers=aes128-gcm@openssh.com', '-B', '261120', '-R', '64'];

function target(name: string, dir: string, argv: (batchFile: string) => { cmd: string; args: string[]; env?: NodeJS.ProcessEnv }): Target {
  let n = 0;
  const t: Target = {
    name,
    overhead: 0,
    async run(batch, timeoutMs) {
      const file = join(dir, `${name}-batch-${++n}.txt`);
      await writeFile(file, batch.join('\n') + '\n');
      const { cmd, args, env } = argv(file);
      const r = await run(cmd, args, { timeoutMs, env });
      if (r.code !== 0) throw new Error(`sftp (${name}) exited ${r.code}: ${r.stderr.trim().slice(-300)}`);
      return r.seconds;
    },
  };
  return t;
}

async function calibrate(t: Target, timeoutMs: number): Promise<void> {
  const xs: number[] = [];
  for (let i = 0; i < 3; i++) xs.push(await t.run(['pwd'], timeoutMs));
  t.overhead = median(xs);
}

export async function sftpScenarios(ctx: Ctx): Promise<void> {
  const { g, sizes, bench, log } = ctx;
  const to = sizes.timeoutMs;
  if (!g.sftpPort) {
    bench.skip(SFTP_METRICS, 'gateway has no SFTP yet', 'openssh');
    return;
  }
  if (!which('sftp') || !which('sshpass')) {
    bench.skip(SFTP_METRICS, 'client missing: apt-get install openssh-client sshpass', 'openssh');
    return;
  }
  const names = Array.from({ length: sizes.runs }, (_, i) => `sftp-${i + 1}.bin`);
  const ev = await createEvent(g, 'bench-sftp', names.map((path) => ({ path, size: sizes.big })));
  const gw = target('gateway', ctx.dir, (file) => ({
    cmd: 'sshpass',
    args: ['-e', 'sftp', '-o', 'BatchMode=no', '-o', 'PubkeyAuthentication=no', '-o', 'PreferredAuthentications=password,keyboard-interactive', ...COMMON, '-P', String(g.sftpPort), '-b', file, `${g.sender.name}@127.0.0.1`],
    env: { ...process.env, SSHPASS: g.sender.password },
  }));
  const peerTarget = (s: Sshd) => target('openssh', ctx.dir, (file) => ({
    cmd: 'sftp',
    args: ['-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-i', s.key, ...COMMON, '-P', String(s.port), '-b', file, `${s.user}@127.0.0.1`],
  }));
  const peer = ctx.sshd.ok ? peerTarget(ctx.sshd.value) : null;
  try {
    await calibrate(gw, to);
    if (peer) await calibrate(peer, to);
  } catch (err) {
    bench.skip(SFTP_METRICS, `failed: ${(err as Error).message.slice(0, 300)}`, 'openssh');
    return;
  }
  const [upM, downM, smallM, syncedM] = SFTP_METRICS;
  const timed = (t: Target, bytes: number, batch: () => string[]) => one(async () => mbps(bytes, Math.max(1e-3, (await t.run(batch(), to)) - t.overhead)));
  const eventDir = `/${ev.id}`;

  log('SFTP upload / download');
  let gu = 0;
  let pu = 0;
  await bench.compare(
    [upM],
    timed(gw, sizes.big, () => [`put ${ctx.big} ${eventDir}/${names[gu++]}`]),
    peerSide(ctx.sshd, 'openssh', (s) => timed(peer!, sizes.big, () => [`put ${ctx.big} ${s.root}/up-${++pu}.bin`])),
  );
  await bench.compare(
    [downM],
    timed(gw, sizes.big, () => [`get ${eventDir}/${names[0]} /dev/null`]),
    peerSide(ctx.sshd, 'openssh', (s) => timed(peer!, sizes.big, () => [`get ${s.root}/up-1.bin /dev/null`])),
  );

  log('SFTP small files');
  const local = join(ctx.dir, 'sftp-small');
  await makeSmallFiles(local, sizes.sftpSmallFiles, 4096);
  const small = (t: Target, remote: () => string, put = 'put *') => one(async () => {
    const dir = remote();
    const seconds = (await t.run([`mkdir ${dir}`, `cd ${dir}`, `lcd ${local}`, put], to)) - t.overhead;
    return sizes.sftpSmallFiles / Math.max(1e-3, seconds);
  });
  let gs = 0;
  let ps = 0;
  // One unmeasured round per side first, as for the WebDAV small PUTs (V8 still optimising).
  await small(gw, () => `${eventDir}/small-warmup`)();
  if (ctx.sshd.ok && peer) {
    const root = ctx.sshd.value.root;
    await small(peer, () => `${root}/small-warmup`)();
  }
  await bench.compare(
    [smallM],
    small(gw, () => `${eventDir}/small-${++gs}`),
    peerSide(ctx.sshd, 'openssh', (s) => small(peer!, () => `${s.root}/small-${++ps}`)),
  );
  // The gateway flushes every file at CLOSE whatever the client asks; OpenSSH only on request.
  // This row gives both the same durability, to show what of the gap above is the flush.
  await bench.compare(
    [syncedM],
    small(gw, () => `${eventDir}/small-${++gs}`, 'put -f *'),
    peerSide(ctx.sshd, 'openssh', (s) => small(peer!, () => `${s.root}/small-${++ps}`, 'put -f *')),
  );
  await rm(local, { recursive: true, force: true });
}
