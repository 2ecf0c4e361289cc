import test from 'ava';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { run, sha256File, SSH_PASSWORD } from '../helpers/sftp.js';
import { hasTool } from '../helpers/tools.js';

// lftp, rclone and sshfs, each as sender (upload) and as recipient (download, no writes).
let tg: TestGateway;
let work: string;
let port: number;
let sender: { name: string; password: string; token: string };
const events: Record<string, { id: string; user: string; password: string }> = {};

const LOCAL_FILES: Record<string, Buffer> = {
  'a.txt': Buffer.from('alpha\n'),
  'nested/b.bin': Buffer.alloc(700_001, 3),
  'nested/deep/c.json': Buffer.from('{"c":true}'),
  'random.bin': Buffer.from(Buffer.alloc(3 * 1024 * 1024 + 17).map((_, i) => (i * 2654435761) >>> 24)),
};

async function writeTree(dir: string): Promise<void> {
  for (const [p, data] of Object.entries(LOCAL_FILES)) {
    await mkdir(join(dir, p, '..'), { recursive: true });
    await writeFile(join(dir, p), data);
  }
}

async function sameTree(t: { is: (a: unknown, b: unknown, m?: string) => void }, dir: string): Promise<void> {
  for (const [p, data] of Object.entries(LOCAL_FILES)) t.is((await readFile(join(dir, p))).equals(data), true, p);
}

async function newEvent(client: string): Promise<void> {
  const r = await tg.api(sender.token, 'POST', '/api/v1/events', { title: client, files: [], recipients: [{ name: `${client} reader` }] });
  events[client] = { id: r.body.id, user: r.body.recipients[0].username, password: r.body.recipients[0].password };
}

test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'handoff-sftp-clients-'));
  await writeTree(join(work, 'src'));
  tg = await startTestGateway();
  port = tg.gateway.ports.sftp;
  sender = await tg.sender();
  for (const c of ['lftp', 'rclone', 'sshfs']) await newEvent(c);
});

test.after.always(async () => {
  await tg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

const lftp = (user: string, password: string, script: string) =>
  run('lftp', ['-c', `set sftp:auto-confirm yes; set net:max-retries 1; set sftp:connect-program "ssh -a -x ${SSH_PASSWORD.join(' ')}"; open -u "${user},${password}" -p ${port} sftp://127.0.0.1; ${script}`], { timeoutMs: 60_000 });

test.serial('lftp mirror -R as sender, mirror back as recipient; recipient put is refused', async (t) => {
  if (!hasTool('lftp')) return t.pass('needs Debian package lftp');
  const e = events.lftp;
  const up = await lftp(sender.name, sender.password, `mirror -R ${join(work, 'src')} /${e.id}/up`);
  t.is(up.code, 0, up.stderr);
  const dl = join(work, 'lftp-dl');
  const down = await lftp(e.user, e.password, `mirror /up ${dl}`);
  t.is(down.code, 0, down.stderr);
  await sameTree(t, dl);
  const refused = await lftp(e.user, e.password, `put ${join(work, 'src', 'a.txt')} -o /x.txt`);
  t.not(refused.code, 0);
  const ls = await lftp(e.user, e.password, 'cls -1 /');
  t.notRegex(ls.stdout, /x\.txt/);
});

function rcloneRemote(user: string, password: string, obscured: string): string {
  void password;
  return `:sftp,host=127.0.0.1,port=${port},user=${user},pass=${obscured},shell_type=none:`;
}

test.serial('rclone copy then check as sender and as recipient; recipient copy into the event fails', async (t) => {
  if (!hasTool('rclone')) return t.pass('needs Debian package rclone');
  const e = events.rclone;
  const env = { RCLONE_CONFIG: '/dev/null' };
  const ob = async (p: string) => (await run('rclone', ['obscure', p], { env })).stdout.trim();
  const senderRemote = rcloneRemote(sender.name, sender.password, await ob(sender.password));
  const src = join(work, 'src');
  const up = await run('rclone', ['copy', src, `${senderRemote}/${e.id}/up`], { env });
  t.is(up.code, 0, up.stderr);
  const check = await run('rclone', ['check', src, `${senderRemote}/${e.id}/up`], { env });
  t.is(check.code, 0, check.stderr);
  const recRemote = rcloneRemote(e.user, e.password, await ob(e.password));
  const dl = join(work, 'rclone-dl');
  const down = await run('rclone', ['copy', `${recRemote}/up`, dl], { env });
  t.is(down.code, 0, down.stderr);
  await sameTree(t, dl);
  const check2 = await run('rclone', ['check', '--download', src, `${recRemote}/up`], { env });
  t.is(check2.code, 0, check2.stderr);
  const refused = await run('rclone', ['copy', '--retries', '1', '--low-level-retries', '1', src, `${recRemote}/mine`], { env });
  t.not(refused.code, 0);
});

async function sshfsMount(dir: string, remote: string, user: string, password: string, extra: string[] = []) {
  await mkdir(dir, { recursive: true });
  const opts = SSH_PASSWORD.filter((o) => o !== '-o').flatMap((o) => ['-o', o]);
  return run('sshfs', ['-p', String(port), `${user}@127.0.0.1:${remote}`, dir, '-o', 'password_stdin', ...opts, ...extra], { input: password + '\n', timeoutMs: 30_000 });
}

test.serial('sshfs: sender mounts, copies a tree, appends, truncates, renames over; recipient mounts read-only content', async (t) => {
  if (!hasTool('sshfs') || !hasTool('fusermount')) return t.pass('needs Debian package sshfs (and fuse3)');
  const e = events.sshfs;
  const mnt = join(work, 'mnt-sender');
  const m = await sshfsMount(mnt, `/${e.id}`, sender.name, sender.password);
  t.is(m.code, 0, m.stderr);
  try {
    // Touch the mount only from child processes: this process serves the requests.
    const cp = await run('cp', ['-r', join(work, 'src'), join(mnt, 'up')]);
    t.is(cp.code, 0, cp.stderr);
    const cmds = await run('sh', ['-c', `set -e; cd "${mnt}"; echo one > f.txt; echo two >> f.txt; cat f.txt; truncate -s 4 f.txt; cat f.txt; echo new > g.txt; mv -f g.txt f.txt; cat f.txt; mkdir d; rmdir d`]);
    t.is(cmds.code, 0, cmds.stderr);
    t.is(cmds.stdout, 'one\ntwo\none\nnew\n');
    const back = await run('sh', ['-c', `cmp "${join(work, 'src', 'random.bin')}" "${join(mnt, 'up', 'random.bin')}"`]);
    t.is(back.code, 0, back.stderr);
  } finally {
    await run('fusermount', ['-u', mnt]);
  }
  const rm2 = join(work, 'mnt-recipient');
  const r = await sshfsMount(rm2, '/', e.user, e.password);
  t.is(r.code, 0, r.stderr);
  try {
    const dl = join(work, 'sshfs-dl');
    const cp = await run('cp', ['-r', join(rm2, 'up'), dl]);
    t.is(cp.code, 0, cp.stderr);
    await sameTree(t, dl);
    t.is(await sha256File(join(dl, 'random.bin')), await sha256File(join(work, 'src', 'random.bin')));
    const w = await run('sh', ['-c', `echo x > "${join(rm2, 'evil.txt')}"`]);
    t.not(w.code, 0);
    const d = await run('rm', [join(rm2, 'f.txt')]);
    t.not(d.code, 0);
  } finally {
    await run('fusermount', ['-u', rm2]);
  }
  const ev = await tg.api(sender.token, 'GET', `/api/v1/events/${e.id}`);
  const paths = ev.body.files.map((f: { path: string }) => f.path).sort();
  t.true(paths.includes('f.txt'));
  t.false(paths.includes('evil.txt'));
});
