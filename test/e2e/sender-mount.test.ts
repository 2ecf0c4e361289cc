import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { startTestGateway, type Account, type TestGateway } from '../helpers/gateway.js';
import { CLI, makeFile, senderHome, waitFor, type SenderHome } from '../helpers/cli.js';
import { hasTool } from '../helpers/tools.js';

const MiB = 1024 * 1024;
const RATE = 20 * MiB;
let gw: TestGateway;
let alice: Account;
let home: SenderHome;
let mountProc: ChildProcess | null = null;
let mnt = '';

test.before(async () => {
  gw = await startTestGateway();
  alice = await gw.sender('alice');
  home = await senderHome({ HANDOFF_SERVER: gw.url, HANDOFF_TOKEN: alice.token, HANDOFF_UPLOAD_RATE: String(RATE) });
});

test.after.always(async () => {
  if (mnt) await run('fusermount', ['-uz', mnt]).catch(() => undefined);
  mountProc?.kill('SIGTERM');
  await home?.cleanup();
  await gw?.stop();
});

/** Every touch of the mount happens in a child process: the FUSE handlers run on another process's event loop anyway, but never ours. */
function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const c = spawn(cmd, args, { env: home.env });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d));
    c.stderr.on('data', (d: Buffer) => (stderr += d));
    c.on('error', fail);
    c.on('close', (code) => done({ code: code ?? -1, stdout, stderr }));
  });
}

const eventFiles = (id: string) =>
  gw.api(alice.token, 'GET', `/api/v1/events/${id}`).then((r) => r.body.files as Array<{ path: string; state: string; bytes: number; sha256: string | null }>);

test('mount: ls shows the event, a 200 MiB cp returns before the throttled upload, unmount leaves it running, and it completes', async (t) => {
  if (!existsSync('/dev/fuse') || !hasTool('fusermount')) {
    t.pass('skipped: FUSE needs /dev/fuse and fusermount (Debian packages libfuse2 and fuse3)');
    return;
  }
  const notes = join(home.root, 'notes.txt');
  await writeFile(notes, 'read me\n');
  const sent = await home.run(['send', notes, '--json']);
  t.is(sent.code, 0, sent.stderr);
  const id = JSON.parse(sent.stdout).id as string;
  await waitFor('notes.txt complete', async () => (await eventFiles(id))[0].state === 'complete', 30_000);

  mnt = join(home.root, 'mnt');
  await mkdir(mnt);
  mountProc = spawn(process.execPath, [CLI, 'mount', id, mnt], { env: home.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let mountOut = '';
  mountProc.stdout!.on('data', (d: Buffer) => (mountOut += d));
  mountProc.stderr!.on('data', (d: Buffer) => (mountOut += d));
  const exited = new Promise<number>((done) => mountProc!.on('close', (code) => done(code ?? -1)));
  await waitFor('the mount', async () => /mounted /.test(mountOut) || (/handoff:/.test(mountOut) && Promise.reject(new Error(mountOut))), 20_000, 100);

  const ls = await run('ls', [mnt]);
  t.is(ls.code, 0, ls.stderr);
  t.deepEqual(ls.stdout.trim().split('\n'), ['notes.txt']);
  const cat = await run('cat', [join(mnt, 'notes.txt')]);
  t.is(cat.stdout, 'read me\n', 'reads stream from the gateway');

  const src = join(home.root, 'big.bin');
  const sha = await makeFile(src, 200 * MiB);
  const t0 = performance.now();
  const cp = await run('cp', [src, join(mnt, 'big.bin')]);
  const cpMs = performance.now() - t0;
  t.is(cp.code, 0, cp.stderr);
  const atReturn = (await eventFiles(id)).find((f) => f.path === 'big.bin');
  t.not(atReturn?.state, 'complete', 'cp returned before the upload finished');
  t.log(`cp of 200 MiB into the mount returned after ${(cpMs / 1000).toFixed(2)} s; the upload is throttled to ${RATE / MiB} MiB/s (>= ${(200 * MiB) / RATE} s)`);

  const lsl = await run('ls', ['-l', mnt]);
  t.regex(lsl.stdout, new RegExp(`${200 * MiB} .* big\\.bin`));
  const xattr = (name: string) => run('python3', ['-c', 'import os,sys; print(os.getxattr(sys.argv[1], "user.handoff.state").decode())', join(mnt, name)]);
  t.is((await xattr('notes.txt')).stdout.trim(), 'complete');
  t.regex((await xattr('big.bin')).stdout.trim(), /^(queued for upload|uploading \d+%|pending)$/);

  const um = await run('fusermount', ['-u', mnt]);
  t.is(um.code, 0, um.stderr);
  t.is(await exited, 0, mountOut);
  mnt = '';

  const done = await waitFor('big.bin complete after unmount', async () => {
    const f = (await eventFiles(id)).find((x) => x.path === 'big.bin');
    return f?.state === 'complete' && f;
  }, 90_000, 500);
  t.log(`upload complete ${((performance.now() - t0) / 1000).toFixed(1)} s after the cp started`);
  t.is(done.sha256, sha);
  const spool = join(home.env.XDG_DATA_HOME!, 'handoff', 'queues', id, 'spool');
  await waitFor('the spool copy removed', async () => (await readdir(spool)).length === 0, 10_000);
});
