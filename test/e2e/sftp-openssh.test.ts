import test from 'ava';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { run, scp, sftpBatch, sha256File, type Login } from '../helpers/sftp.js';
import { hasTool } from '../helpers/tools.js';
import { uploadFsyncs } from '../../src/protocols/sftp/operations.js';
import { commitsAfterSync } from '../../src/cache/backends/LocalBackend.js';
import { inboundInstalled, inboundReturned, installed as packetPoolInstalled, pooledFree, socketReadsReused } from '../../src/protocols/sftp/packetBuffers.js';

// OpenSSH sftp and scp against the gateway: a sender fills an event, a recipient reads it and cannot change it.
const ready = hasTool('sftp') && hasTool('scp') && hasTool('sshpass');
const BIG = 200 * 1024 * 1024;

let tg: TestGateway;
let work: string;
let eventId: string;
let sender: Login;
let recipient: Login;
let senderToken = '';
const files: Array<{ path: string; size: number; sha256: string }> = [];

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p)));
    else out.push(p);
  }
  return out;
}

test.before(async () => {
  if (!ready) return;
  work = await mkdtemp(join(tmpdir(), 'handoff-sftp-openssh-'));
  const src = join(work, 'src');
  await mkdir(join(src, 'sub', 'deeper'), { recursive: true });
  await writeFile(join(src, 'notes.txt'), 'hello over sftp\n'.repeat(100));
  await writeFile(join(src, 'empty.dat'), '');
  await writeFile(join(src, 'sub', 'data.json'), JSON.stringify({ a: 1, name: 'Zoë' }));
  await writeFile(join(src, 'sub', 'deeper', 'odd size.bin'), Buffer.alloc(1_000_003, 7));
  const r = await run('sh', ['-c', `head -c ${BIG} /dev/urandom > "${join(src, 'big.bin')}"`]);
  if (r.code !== 0) throw new Error(r.stderr);
  for (const f of await walk(src)) files.push({ path: 'src/' + relative(src, f), size: (await stat(f)).size, sha256: await sha256File(f) });

  tg = await startTestGateway();
  const s = await tg.sender();
  const created = await tg.api(s.token, 'POST', '/api/v1/events', { files, recipients: [{ name: 'Reader' }] });
  if (created.status !== 201) throw new Error(JSON.stringify(created.body));
  eventId = created.body.id;
  const port = tg.gateway.ports.sftp;
  sender = { port, user: s.name, password: s.password };
  recipient = { port, user: created.body.recipients[0].username, password: created.body.recipients[0].password };
  senderToken = s.token;
});

test.after.always(async () => {
  await tg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

const token = () => senderToken;

test.serial('sender uploads a folder of mixed files (one 200 MiB) with sftp -b; every file turns complete with its sha256', async (t) => {
  if (!ready) return t.pass('needs Debian packages openssh-client and sshpass');
  const returnedBefore = inboundReturned();
  const readsBefore = socketReadsReused();
  const r = await sftpBatch(sender, [`cd /${eventId}`, 'put -r src', 'ls -l src'], work);
  t.is(r.code, 0, r.stderr);
  // The upload arrived in reused packet buffers (packetBuffers.ts): about 6,400 SSH packets carry
  // the 200 MiB, and the hashes below prove no reused buffer was overwritten before it was copied.
  t.true(inboundInstalled, 'copying AES-GCM decipher installed (ssh2 1.17 with its native binding)');
  t.true(inboundReturned() - returnedBefore > 3000, `inbound packet buffers reused: ${inboundReturned() - returnedBefore}`);
  // ...and, after the key exchange, socket reads into one reused buffer (200 MiB in at most 64 KiB each).
  t.true(socketReadsReused() - readsBefore > 3000, `socket reads into the reused buffer: ${socketReadsReused() - readsBefore}`);
  t.regex(r.stdout, /big\.bin/);
  const ev = await tg.api(token(), 'GET', `/api/v1/events/${eventId}`);
  for (const f of files) {
    const got = ev.body.files.find((x: { path: string }) => x.path === f.path);
    t.truthy(got, f.path);
    t.is(got.state, 'complete', f.path);
    t.is(got.size, f.size, f.path);
    t.is(got.sha256, f.sha256, f.path);
  }
});

test.serial('recipient lands in the event root and downloads everything byte-identical', async (t) => {
  if (!ready) return t.pass('needs Debian packages openssh-client and sshpass');
  const dl = join(work, 'dl');
  await mkdir(dl);
  const r = await sftpBatch(recipient, ['pwd', 'ls -l', 'get -r src'], dl);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /Remote working directory: \/\n/);
  t.regex(r.stdout, /dr-xr-xr-x .* src/);
  for (const f of files) t.is(await sha256File(join(dl, f.path)), f.sha256, f.path);
  // The 200 MiB download went out in recycled packet buffers (packetBuffers.ts), and arrived intact above.
  t.true(packetPoolInstalled, 'ssh2 packet pool installed (ssh2 1.17 with its native binding)');
  t.true(pooledFree() > 0, 'packet buffers came back from the socket');
});

for (const [what, cmd] of [
  ['put', 'put notes.txt /notes-copy.txt'],
  ['rm', 'rm /src/notes.txt'],
  ['rename', 'rename /src/notes.txt /src/renamed.txt'],
  ['mkdir', 'mkdir /newdir'],
  ['overwrite', 'put notes.txt /src/notes.txt'],
  ['rmdir', 'rmdir /src/sub/deeper'],
  ['chmod', 'chmod 600 /src/notes.txt'],
] as const) {
  test.serial(`recipient ${what} fails with a permission error and changes nothing`, async (t) => {
    if (!ready) return t.pass('needs Debian packages openssh-client and sshpass');
    const before = (await tg.api(token(), 'GET', `/api/v1/events/${eventId}`)).body.files;
    const r = await sftpBatch(recipient, [cmd], join(work, 'src'));
    t.not(r.code, 0);
    t.regex(r.stderr, /Permission denied/i);
    const after = (await tg.api(token(), 'GET', `/api/v1/events/${eventId}`)).body.files;
    t.deepEqual(after, before);
  });
}

test.serial('sender sees one folder per event, cannot write at the top level, and stats, renames and removes inside', async (t) => {
  if (!ready) return t.pass('needs Debian packages openssh-client and sshpass');
  const top = await sftpBatch(sender, ['ls -l /'], work);
  t.is(top.code, 0, top.stderr);
  t.regex(top.stdout, new RegExp(`drwxr-xr-x .* ${eventId}`));
  t.not((await sftpBatch(sender, ['mkdir /not-an-event'], work)).code, 0);
  const r = await sftpBatch(sender, [`cd /${eventId}/src`, 'put notes.txt extra.txt', 'rename extra.txt sub/extra2.txt', 'ls sub', 'rm sub/extra2.txt', 'mkdir made', 'rmdir made', 'ls'], join(work, 'src'));
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /extra2\.txt/);
  t.notRegex(r.stdout.split('sftp> ls\n').pop() ?? '', /made|extra/);
});

test.serial('put -f asks for fsync@openssh.com, which the server offers; the file turns complete', async (t) => {
  if (!ready) return t.pass('needs Debian packages openssh-client and sshpass');
  const before = uploadFsyncs();
  const commitsBefore = commitsAfterSync();
  const r = await sftpBatch(sender, [`cd /${eventId}/src`, 'put -f notes.txt synced.txt'], join(work, 'src'));
  t.is(r.code, 0, r.stderr);
  // OpenSSH sends it only to a server that advertises the extension, and says nothing otherwise.
  t.is(uploadFsyncs() - before, 1);
  // ...and the CLOSE that follows flushes only the folder entry, the data being on disk already.
  t.is(commitsAfterSync() - commitsBefore, 1);
  const ev = await tg.api(token(), 'GET', `/api/v1/events/${eventId}`);
  const got = ev.body.files.find((x: { path: string }) => x.path === 'src/synced.txt');
  t.is(got?.state, 'complete');
  t.is(got?.bytes, files.find((f) => f.path === 'src/notes.txt')!.size);
  t.is((await sftpBatch(sender, [`rm /${eventId}/src/synced.txt`], work)).code, 0);
});

test.serial('REALPATH never goes above the root', async (t) => {
  if (!ready) return t.pass('needs Debian packages openssh-client and sshpass');
  const r = await sftpBatch(recipient, ['cd /../../..', 'pwd', 'cd src/../..', 'pwd'], work);
  t.is(r.code, 0, r.stderr);
  t.deepEqual(r.stdout.match(/Remote working directory: .*/g), ['Remote working directory: /', 'Remote working directory: /']);
});

test.serial('scp (SFTP mode) uploads as sender and downloads as recipient, exit 0, byte-identical, five rounds', async (t) => {
  if (!ready) return t.pass('needs Debian packages openssh-client and sshpass');
  const local = join(work, 'scp-src.bin');
  await run('sh', ['-c', `head -c 1048576 /dev/urandom > "${local}"`]);
  const want = await sha256File(local);
  for (let i = 0; i < 5; i++) {
    const up = await scp(sender, [local, `${sender.user}@127.0.0.1:/${eventId}/scp-${i}.bin`]);
    t.is(up.code, 0, up.stderr);
    const back = join(work, `scp-back-${i}.bin`);
    const down = await scp(recipient, [`${recipient.user}@127.0.0.1:/scp-${i}.bin`, back]);
    t.is(down.code, 0, down.stderr);
    t.is(await sha256File(back), want);
  }
  const refused = await scp(recipient, [local, `${recipient.user}@127.0.0.1:/scp-x.bin`]);
  t.not(refused.code, 0);
});
