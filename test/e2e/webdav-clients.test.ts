import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { dav, davEvent, hrefs } from '../helpers/dav.js';
import { hasTool } from '../helpers/tools.js';

/** Real WebDAV clients against /dav/EVENT/: davfs2 (kernel mount), rclone, cadaver. */
const exec = promisify(execFile);
let gw: TestGateway;
let work: string;

test.before(async () => {
  gw = await startTestGateway({ events: { quotaSlack: 64 * 1024 * 1024 } });
  work = await mkdtemp(join(tmpdir(), 'dav-clients-'));
  // mount.davfs drops to the davfs2 user, which must reach the cache folders below.
  await chmod(work, 0o755);
});

test.after.always(async () => {
  await gw?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return h.digest('hex');
}

function run(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (c) => (out += c));
    p.stderr.on('data', (c) => (out += c));
    const timer = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, out });
    });
    p.stdin.end(opts.input ?? '');
  });
}

const canMount = () => hasTool('mount.davfs') && process.getuid?.() === 0;

async function davfsMount(url: string, user: string, password: string, name: string): Promise<{ dir: string; unmount: () => Promise<void> }> {
  const dir = join(work, `${name}-mnt`);
  const cache = join(work, `${name}-cache`);
  await mkdir(dir, { recursive: true });
  await mkdir(cache, { recursive: true });
  await chmod(cache, 0o1777);
  // nephele rejects empty owners without our fix; use_locks + lock_owner as TESTING.md recommends anyway.
  const conf = join(work, `${name}.conf`);
  await writeFile(conf, `use_locks 1\nlock_owner handoff-test\ncache_dir ${cache}\ndelay_upload 0\n`);
  const m = await run('mount', ['-t', 'davfs', url, dir, '-o', `username=${user},uid=0,conf=${conf}`], { input: `${password}\n` });
  if (m.code !== 0) throw new Error(`mount.davfs failed: ${m.out}`);
  return { dir, unmount: async () => void (await run('umount', [dir], { timeoutMs: 120_000 })) };
}

test.serial('davfs2: a 200 MiB file copied in is complete with the right sha256 after unmount', async (t) => {
  if (!canMount()) {
    t.pass('davfs2 (Debian package davfs2) or root missing: skipped');
    return;
  }
  const src = join(work, 'big.bin');
  await exec('sh', ['-c', `head -c ${200 * 1024 * 1024} /dev/urandom > '${src}'`]);
  const sha256 = await sha256File(src);
  const owner = await gw.sender();
  const ev = await davEvent(gw, owner, [], [{ path: 'big.bin', size: 200 * 1024 * 1024, sha256 }]);
  const m = await davfsMount(ev.url, owner.name, owner.password, 'owner');
  try {
    const cp = await run('cp', [src, join(m.dir, 'big.bin')], { timeoutMs: 120_000 });
    t.is(cp.code, 0, cp.out);
  } finally {
    await m.unmount();
  }
  const view = await gw.api(owner.token, 'GET', `/api/v1/events/${ev.id}`);
  const f = view.body.files.find((x: { path: string }) => x.path === 'big.bin');
  t.is(f?.state, 'complete');
  t.is(f?.sha256, sha256);
  const got = createHash('sha256');
  const res = await fetch(ev.url + 'big.bin', { headers: { authorization: 'Basic ' + Buffer.from(`${owner.name}:${owner.password}`).toString('base64') } });
  for await (const c of res.body as unknown as AsyncIterable<Uint8Array>) got.update(c);
  t.is(got.digest('hex'), sha256);
});

test.serial('davfs2: a recipient mount reads and cannot write', async (t) => {
  if (!canMount()) {
    t.pass('davfs2 (Debian package davfs2) or root missing: skipped');
    return;
  }
  const owner = await gw.sender();
  const ev = await davEvent(gw, owner, ['reader']);
  await dav('PUT', ev.url + 'hello.txt', [owner.name, owner.password], { body: 'hello reader' });
  const r = ev.recipients[0];
  const m = await davfsMount(ev.url, r.username, r.password, 'reader');
  try {
    t.is(await readFile(join(m.dir, 'hello.txt'), 'utf8'), 'hello reader');
    await run('sh', ['-c', `echo nope > '${join(m.dir, 'new.txt')}'`]);
    await run('sh', ['-c', `echo changed > '${join(m.dir, 'hello.txt')}'`]);
    await run('mkdir', [join(m.dir, 'newdir')]);
    await run('rm', ['-f', join(m.dir, 'hello.txt')]);
  } finally {
    await m.unmount();
  }
  const listing = hrefs((await dav('PROPFIND', ev.url, [owner.name, owner.password], { headers: { depth: '1' } })).body);
  t.false(listing.some((h) => h.endsWith('/new.txt') || h.endsWith('/newdir/')));
  t.is((await dav('GET', ev.url + 'hello.txt', [owner.name, owner.password])).body, 'hello reader');
});

test.serial('rclone webdav: copy then check agree; a recipient can copy out but not in', async (t) => {
  if (!hasTool('rclone')) {
    t.pass('rclone (Debian package rclone) missing: skipped');
    return;
  }
  const owner = await gw.sender();
  const ev = await davEvent(gw, owner, ['mirror']);
  const src = join(work, 'rclone-src');
  await mkdir(join(src, 'sub dir'), { recursive: true });
  await writeFile(join(src, 'a.txt'), 'alpha');
  await writeFile(join(src, 'sub dir', 'bëta.bin'), Buffer.alloc(300_000, 9));
  const env = { ...process.env, RCLONE_CONFIG: join(work, 'rclone.conf') };
  const remote = async (user: string, pass: string) => {
    const obscured = (await run('rclone', ['obscure', pass], { env })).out.trim();
    return `:webdav,url='${ev.url}',user='${user}',pass='${obscured}':`;
  };
  const ownerRemote = await remote(owner.name, owner.password);
  const copy = await run('rclone', ['copy', src, ownerRemote], { env });
  t.is(copy.code, 0, copy.out);
  const check = await run('rclone', ['check', '--download', src, ownerRemote], { env });
  t.is(check.code, 0, check.out);
  const r = ev.recipients[0];
  const recRemote = await remote(r.username, r.password);
  const out = join(work, 'rclone-out');
  t.is((await run('rclone', ['copy', recRemote, out], { env })).code, 0);
  t.is(await readFile(join(out, 'sub dir', 'bëta.bin')).then((b) => b.length), 300_000);
  await writeFile(join(out, 'intruder.txt'), 'x');
  const push = await run('rclone', ['copy', '--retries', '1', '--low-level-retries', '1', out, recRemote], { env });
  t.not(push.code, 0);
  t.is((await dav('GET', ev.url + 'intruder.txt', [owner.name, owner.password])).status, 404);
});

test.serial('cadaver: put and get with credentials from .netrc', async (t) => {
  if (!hasTool('cadaver')) {
    t.pass('cadaver (Debian package cadaver) missing: skipped');
    return;
  }
  const owner = await gw.sender();
  const ev = await davEvent(gw, owner);
  const home = join(work, 'cadaver-home');
  await mkdir(home, { recursive: true });
  const host = new URL(ev.url).hostname;
  await writeFile(join(home, '.netrc'), `machine ${host}\nlogin ${owner.name}\npassword ${owner.password}\n`, { mode: 0o600 });
  const local = join(home, 'up.txt');
  await writeFile(local, 'via cadaver\n');
  const back = join(home, 'down.txt');
  const res = await run('cadaver', [ev.url], { input: `put ${local} up.txt\nget up.txt ${back}\nquit\n`, env: { ...process.env, HOME: home } });
  t.is((await dav('GET', ev.url + 'up.txt', [owner.name, owner.password])).body, 'via cadaver\n', res.out);
  t.is(await readFile(back, 'utf8'), 'via cadaver\n');
});
