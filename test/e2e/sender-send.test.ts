import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { startTestGateway, type TestGateway, type Account } from '../helpers/gateway.js';
import { countReceived, makeFile, senderHome, waitFor, type SenderHome } from '../helpers/cli.js';

const MiB = 1024 * 1024;
const BIG = 300 * MiB;
let gw: TestGateway;
let alice: Account;
let home: SenderHome;
let received: Map<string, number>;
let files: { dir: string; big: string; bigSha: string; smallSha: string; midSha: string };

test.before(async () => {
  gw = await startTestGateway();
  alice = await gw.sender('alice');
  received = countReceived(gw.gateway);
  home = await senderHome({ HANDOFF_SERVER: gw.url, HANDOFF_TOKEN: alice.token });
  const dir = join(home.root, 'footage');
  await mkdir(join(dir, 'day1'), { recursive: true });
  const big = join(dir, 'day1', 'big.bin');
  files = {
    dir, big,
    bigSha: await makeFile(big, BIG),
    midSha: await makeFile(join(dir, 'day1', 'mid.bin'), 5 * MiB + 17),
    smallSha: '',
  };
  await writeFile(join(dir, 'notes.txt'), 'hello handoff\n');
  files.smallSha = (await import('node:crypto')).createHash('sha256').update('hello handoff\n').digest('hex');
});

test.after.always(async () => {
  await home?.cleanup();
  await gw?.stop();
});

async function eventFiles(id: string) {
  return (await gw.api(alice.token, 'GET', `/api/v1/events/${id}`)).body.files as Array<{ path: string; state: string; bytes: number; size: number; sha256: string | null }>;
}

function curlSha(url: string, user: string, pass: string): Promise<string> {
  return new Promise((done, fail) => {
    const curl = spawn('sh', ['-c', `curl -sSf -u "$U:$P" "$URL" | sha256sum`], { env: { ...process.env, U: user, P: pass, URL: url } });
    let out = '';
    curl.stdout.on('data', (d: Buffer) => (out += d));
    curl.on('close', (code) => (code === 0 ? done(out.split(' ')[0]) : fail(new Error(`curl exit ${code}`))));
  });
}

test.serial('send prints addresses and credentials at once, exits, and the background upload completes every file; a recipient download matches sha256', async (t) => {
  const t0 = performance.now();
  const r = await home.run(['send', files.dir, '--recipient', 'Bob', '--title', 'Footage', '--json']);
  const elapsed = performance.now() - t0;
  t.is(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  t.log(`send printed the event and exited after ${elapsed.toFixed(0)} ms (300 MiB + 2 files)`);
  t.regex(out.id, /^[a-z0-9]{26}$/);
  t.true(out.addresses.web.endsWith(`/e/${out.id}/`));
  t.truthy(out.addresses.webdav);
  t.truthy(out.addresses.sftp);
  t.is(out.recipients.length, 1);
  t.truthy(out.recipients[0].username);
  t.truthy(out.recipients[0].password);
  t.deepEqual(out.files.map((f: { path: string }) => f.path).sort(), ['footage/day1/big.bin', 'footage/day1/mid.bin', 'footage/notes.txt']);
  t.true(out.files.every((f: { state: string }) => f.state === 'pending'), 'the addresses come before any byte');

  const done = await waitFor('all complete', async () => {
    const fs = await eventFiles(out.id);
    return fs.every((f) => f.state === 'complete') && fs;
  });
  t.log(`background upload complete after ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const big = done.find((f) => f.path === 'footage/day1/big.bin')!;
  t.is(big.sha256, files.bigSha);
  const bob = out.recipients[0];
  t.is(await curlSha(`${out.addresses.web}files/footage/day1/big.bin`, bob.username, bob.password), files.bigSha);
  t.is(await curlSha(`${out.addresses.web}files/footage/notes.txt`, bob.username, bob.password), files.smallSha);
  t.is(await curlSha(`${out.addresses.web}files/footage/day1/mid.bin`, bob.username, bob.password), files.midSha);

  const status = await home.run(['status', out.id]);
  t.is(status.code, 0, status.stderr);
  t.regex(status.stdout, /3 of 3 files complete/);
  t.regex(status.stdout, /uploader: done/);
});

test.serial('killing the background uploader half-way through the big file: status revives it and less than 10% is sent twice', async (t) => {
  const r = await home.run(['send', files.big, '--json'], { env: { HANDOFF_UPLOAD_RATE: String(60 * MiB) } });
  t.is(r.code, 0, r.stderr);
  const id = JSON.parse(r.stdout).id as string;
  const half = await waitFor('half of the big file', async () => {
    const f = (await eventFiles(id))[0];
    return f.bytes >= BIG * 0.4 && f.bytes < BIG && f;
  }, 120_000, 100);
  const pids = await home.uploaderPids();
  t.is(pids.length, 1, 'one uploader runs');
  process.kill(pids[0], 'SIGKILL');
  await waitFor('the uploader to die', async () => (await home.uploaderPids()).length === 0, 10_000, 50);
  const atKill = (await eventFiles(id))[0];
  t.not(atKill.state, 'complete');
  // The tus offset the gateway keeps for the interrupted upload (HEAD on the URL the uploader saved).
  const queue = JSON.parse(await readFile(join(home.env.XDG_DATA_HOME!, 'handoff', 'queues', id, 'queue.json'), 'utf8'));
  const head = await fetch(queue.files[0].uploadUrl, { method: 'HEAD', headers: { authorization: `Bearer ${alice.token}`, 'tus-resumable': '1.0.0' } });
  const offset = Number(head.headers.get('upload-offset'));
  const receivedAtKill = received.get(`${id}/big.bin`) ?? 0;
  t.log(`killed after ${(half.bytes / MiB).toFixed(0)} MiB; gateway received ${(receivedAtKill / MiB).toFixed(1)} MiB and keeps tus offset ${(offset / MiB).toFixed(1)} MiB`);
  t.true(offset > 0 && offset <= receivedAtKill);

  const status = await home.run(['status', id]);
  t.is(status.code, 0, status.stderr);
  t.regex(status.stdout, /uploader: (restarted|running)/);
  await waitFor('complete after revival', async () => (await eventFiles(id))[0].state === 'complete');
  const f = (await eventFiles(id))[0];
  t.is(f.sha256, files.bigSha);
  const total = received.get(`${id}/big.bin`) ?? 0;
  t.log(`gateway received ${(total / MiB).toFixed(1)} MiB for a ${BIG / MiB} MiB file (${(((total - BIG) / BIG) * 100).toFixed(2)}% twice)`);
  t.true(total >= BIG);
  t.true(total - BIG < BIG * 0.1, `resent ${total - BIG} bytes`);
});
