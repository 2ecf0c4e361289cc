import test, { type ExecutionContext } from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseConfig } from '../../src/config/load.js';
import { SqliteDatabase } from '../../src/db/sqlite.js';
import { Gateway } from '../../src/gateway.js';
import { createLogger } from '../../src/shared/log.js';
import { packageRoot } from '../../src/shared/packageRoot.js';
import { JOURNAL_MAX } from '../../src/cache/journal.js';
import { b64, rawRequest, startServe, tusCreate, tusHead, tusPatch, type ServeChild } from '../helpers/ops.js';
import { hasTool, missingToolMessage } from '../helpers/tools.js';

let dir: string;
let serve: ServeChild | null = null;

/** Stops the test's `handoff serve` child with SIGTERM and checks it exits cleanly. */
async function stopServe(t: ExecutionContext): Promise<void> {
  if (!serve) return;
  serve.child.kill('SIGTERM');
  t.is(await serve.exited, 0);
  serve = null;
}
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'handoff-crash-'));
});
test.after.always(async () => {
  serve?.child.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

/** Starts a PATCH whose body never ends: the server is killed while it is reading it. */
function hangingPatch(location: string, auth: string, offset: number, total: number, first: Buffer): void {
  const req = request(location, {
    method: 'PATCH',
    agent: false,
    headers: { authorization: auth, 'tus-resumable': '1.0.0', 'upload-offset': String(offset), 'content-type': 'application/offset+octet-stream', 'content-length': String(total) },
  });
  req.on('error', () => undefined);
  req.write(first);
}

async function tempGrowsPast(path: string, bytes: number): Promise<void> {
  for (let i = 0; i < 400; i++) {
    const size = await stat(path).then((s) => s.size, () => 0);
    if (size > bytes) return;
    await sleep(25);
  }
  throw new Error(`${path} never grew past ${bytes}`);
}

/** A config and data folder of its own under `dir`, with a sender alice and her API token, made before `serve` starts. */
async function prepare(name: string): Promise<{ configFile: string; dataDir: string; token: string }> {
  const configFile = join(dir, `${name}.json`);
  const config = { dataDir: join(dir, name), http: { port: 0 }, sftp: { port: 0 }, auth: { argon2: { memoryCost: 1024, timeCost: 1, parallelism: 1 } }, log: { level: 'info' } };
  await writeFile(configFile, JSON.stringify(config));
  const setup = await Gateway.create(parseConfig(config), { log: createLogger('warn') });
  await setup.accounts.add('alice', 'sender', 'alice-password-long');
  const token = await setup.accounts.createToken('alice');
  await setup.stop(0);
  return { configFile, dataDir: config.dataDir, token };
}

test.serial('SIGKILL during tus uploads: nothing partial listed complete, integrity ok, quota = Σ complete, tus resumes', async (t) => {
  const { configFile, dataDir, token } = await prepare('crash');
  const auth = `Bearer ${token}`;

  serve = await startServe(configFile);
  const done = Buffer.alloc(64 * 1024, 1);
  const big = Buffer.alloc(4 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 4) big.writeUInt32LE(i, i);
  const zero = Buffer.alloc(1024 * 1024, 3);
  const created = await rawRequest(`${serve.url}/api/v1/events`, {
    method: 'POST', headers: { authorization: auth, 'content-type': 'application/json' },
    body: JSON.stringify({ files: [{ path: 'done.bin', size: done.length }, { path: 'big.bin', size: big.length }, { path: 'zero.bin', size: zero.length }] }),
  });
  const id = JSON.parse(created.body.toString()).id as string;
  t.is((await tusCreate(serve.url, id, auth, 'done.bin', done.length, done)).status, 201);
  const bigUp = await tusCreate(serve.url, id, auth, 'big.bin', big.length);
  const MiB = 1024 * 1024;
  t.is((await tusPatch(bigUp.location, auth, 0, big.subarray(0, MiB))).status, 204);
  const zeroUp = await tusCreate(serve.url, id, auth, 'zero.bin', zero.length);
  const partial = (loc: string) => join(dataDir, 'storage', id, '.partial', loc.split('/').pop()!);
  hangingPatch(bigUp.location, auth, MiB, big.length - MiB, big.subarray(MiB, MiB + MiB / 2));
  hangingPatch(zeroUp.location, auth, 0, zero.length, zero.subarray(0, MiB / 4));
  await tempGrowsPast(partial(bigUp.location), MiB);
  await tempGrowsPast(partial(zeroUp.location), 0);
  serve.child.kill('SIGKILL');
  await serve.exited;

  serve = await startServe(configFile);
  const base = serve.url;
  const at = (loc: string) => base + new URL(loc).pathname;
  const view = JSON.parse((await rawRequest(`${base}/api/v1/events/${id}`, { headers: { authorization: auth } })).body.toString());
  const state = Object.fromEntries(view.files.map((f: { path: string; state: string }) => [f.path, f.state]));
  t.is(state['done.bin'], 'complete');
  t.not(state['big.bin'], 'complete');
  t.not(state['zero.bin'], 'complete');
  const page = (await rawRequest(`${base}/e/${id}/`, { headers: { authorization: auth } })).body.toString();
  t.true(page.includes('files/done.bin'));
  t.notRegex(page, /class="state-complete" data-path="big\.bin"/, 'a partial file is never listed as complete');
  // A download of it follows the resumable upload (live events) and is marked so; it is never served as whole.
  const partialHead = await rawRequest(`${base}/e/${id}/files/big.bin`, { method: 'HEAD', headers: { authorization: auth } });
  t.not(partialHead.headers['x-handoff-state'] === undefined && partialHead.status === 200, true, 'a partial file is not served as complete');

  const db = await SqliteDatabase.open(join(dataDir, 'handoff.db'));
  try {
    t.deepEqual(await db.query('PRAGMA integrity_check'), [{ integrity_check: 'ok' }]);
    t.deepEqual(await db.query('PRAGMA foreign_key_check'), []);
    const q = await db.get<{ used_bytes: number; reserved_bytes: number }>('SELECT used_bytes, reserved_bytes FROM events WHERE id = ?', [id]);
    t.is(q?.used_bytes, done.length, 'quota usage equals the sum of complete files');
    t.is(q?.reserved_bytes, big.length + zero.length, 'the resumable uploads keep their reservation');
  } finally {
    await db.close();
  }

  // `handoff check` beside the running server reports without touching anything.
  const check = spawnSync(process.execPath, [join(packageRoot(), 'dist', 'src', 'main.js'), 'check', '--config', configFile], { encoding: 'utf8' });
  t.is(check.status, 0, check.stderr);
  t.regex(check.stdout, /database quick_check: ok/);
  t.regex(check.stdout, /resumable tus uploads: 2/);

  // The tus uploads resume from their last acknowledged offset and complete.
  const bigHead = await tusHead(at(bigUp.location), auth);
  t.is(bigHead.headers['upload-offset'], String(MiB));
  t.is((await tusPatch(at(bigUp.location), auth, MiB, big.subarray(MiB))).headers['upload-offset'], String(big.length));
  t.is((await tusHead(at(zeroUp.location), auth)).headers['upload-offset'], '0');
  t.is((await tusPatch(at(zeroUp.location), auth, 0, zero)).status, 204);
  const got = await rawRequest(`${base}/e/${id}/files/big.bin`, { headers: { authorization: auth } });
  t.is(createHash('sha256').update(got.body).digest('hex'), createHash('sha256').update(big).digest('hex'));
  const after = JSON.parse((await rawRequest(`${base}/api/v1/events/${id}`, { headers: { authorization: auth } })).body.toString());
  t.true(after.files.every((f: { state: string }) => f.state === 'complete'));
  t.is(after.usedBytes, done.length + big.length + zero.length);

  await stopServe(t);
});

/**
 * `serve` on a fresh data folder with an empty event whose storage folder exists (a first WebDAV
 * PUT made it), so a traced upload into it is an ordinary one.
 */
async function serveWithEvent(name: string): Promise<{ serve: ServeChild; dataDir: string; id: string; basic: string }> {
  const { configFile, dataDir, token } = await prepare(name);
  // Assigned at once so teardown kills it even if the setup below fails.
  serve = await startServe(configFile);
  const created = await rawRequest(`${serve.url}/api/v1/events`, {
    method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ files: [] }),
  });
  const id = JSON.parse(created.body.toString()).id as string;
  const basic = `Basic ${b64('alice:alice-password-long')}`;
  const first = await rawRequest(`${serve.url}/dav/${id}/first.txt`, { method: 'PUT', headers: { authorization: basic }, body: Buffer.from('first') });
  if (first.status !== 201) throw new Error(`first PUT: HTTP ${first.status}`);
  return { serve, dataDir, id, basic };
}

/** Attaches strace to every thread of `pid` (output with thread ids and fd paths); the returned function detaches and returns the trace. */
async function attachStrace(pid: number, name: string, args: string[]): Promise<() => Promise<string>> {
  const out = join(dir, name);
  const tracer = spawn('strace', ['-f', '-y', '-qq', '-s', '48', ...args, '-o', out, '-p', String(pid)], { stdio: 'ignore' });
  const traced = new Promise((resolve) => tracer.on('exit', resolve));
  // strace creates its output file once attached to every thread.
  for (let i = 0; i < 100 && !(await stat(out).then(() => true, () => false)); i++) await sleep(50);
  await sleep(300);
  return async () => {
    tracer.kill('SIGINT');
    await traced;
    return readFile(out, 'utf8');
  };
}

interface Call {
  tid: number;
  name: string;
  args: string;
  result: string;
}

/** Completed system calls in the order they returned, from `strace -f -y` output (unfinished/resumed paired per thread). */
function completedCalls(trace: string): Call[] {
  const pending = new Map<string, { name: string; args: string }>();
  const calls: Call[] = [];
  for (const line of trace.split('\n')) {
    const m = /^(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const [, tid, rest] = m;
    const unfinished = /^(\w+)\((.*) <unfinished \.\.\.>$/.exec(rest);
    if (unfinished) {
      pending.set(tid, { name: unfinished[1], args: unfinished[2] });
      continue;
    }
    const resumed = /^<\.\.\. (\w+) resumed>(.*)\)\s+= (.*)$/.exec(rest);
    if (resumed) {
      const start = pending.get(tid);
      pending.delete(tid);
      calls.push({ tid: Number(tid), name: resumed[1], args: (start?.args ?? '') + resumed[2], result: resumed[3] });
      continue;
    }
    const whole = /^(\w+)\((.*)\)\s+= (.*)$/.exec(rest);
    if (whole) calls.push({ tid: Number(tid), name: whole[1], args: whole[2], result: whole[3] });
  }
  return calls;
}

test.serial('a WebDAV PUT past the journal size is answered only after fsync of the data and its folder, then the commit, then an fdatasync of the database WAL', async (t) => {
  if (!hasTool('strace')) return t.pass(missingToolMessage('strace'));
  const ready = await serveWithEvent('durable');
  const { dataDir, id, basic } = ready;
  serve = ready.serve;

  // Every flush is held 150 ms on its way back, so an answer that did not wait for one would overtake it.
  const stopTrace = await attachStrace(serve.child.pid!, 'durable-strace.txt', ['-e', 'trace=fsync,fdatasync,rename,renameat,renameat2,pwrite64,pwritev,write,writev', '-e', 'inject=fsync,fdatasync:delay_exit=150000']);
  // Larger than JOURNAL_MAX (smaller files are made durable through the WAL: the next test).
  const body = Buffer.concat([Buffer.from('durable body'), Buffer.alloc(JOURNAL_MAX, 7)]);
  const put = await rawRequest(`${serve.url}/dav/${id}/durable.txt`, { method: 'PUT', headers: { authorization: basic }, body });
  t.is(put.status, 201);
  await sleep(500);
  const calls = completedCalls(await stopTrace());
  const index = (what: string, pred: (c: Call) => boolean, from = 0): number => {
    const i = calls.findIndex((c, k) => k >= from && pred(c));
    t.true(i >= 0, `${what} not found in the trace`);
    return i;
  };
  const storage = join(dataDir, 'storage', id);
  const data = index('the body written to a temp', (c) => /^pwrite/.test(c.name) && c.args.includes('/.partial/') && c.args.includes('durable body'));
  const renamed = index('the rename of the temp', (c) => c.name.startsWith('rename') && c.args.includes('/.partial/'), data);
  const blob = /"([^"]+)"\)?$/.exec(calls[renamed].args.replace(/, \d+$/, ''))?.[1] ?? '';
  t.true(blob.startsWith(storage + '/'), calls[renamed].args);
  const fileSynced = index('fsync of the renamed file', (c) => /^f(data)?sync$/.test(c.name) && c.args.includes(`<${blob}>`), renamed);
  const dirSynced = index('fsync of its folder', (c) => c.name === 'fsync' && c.args.includes(`<${storage}>`), renamed);
  const flushed = Math.max(fileSynced, dirSynced);
  const commit = index('the commit written to the WAL', (c) => c.name === 'pwrite64' && c.args.includes('handoff.db-wal>'), flushed);
  const walSynced = index('fdatasync of the WAL', (c) => /^f(data)?sync$/.test(c.name) && c.args.includes('handoff.db-wal>'), commit);
  const answer = index('the 201 on the socket', (c) => /^write/.test(c.name) && c.args.includes('socket:') && c.args.includes('HTTP/1.1 201'), data);
  t.true(flushed < answer, 'the answer leaves only after the data and its folder are on disk');
  t.true(walSynced < answer, 'the answer leaves only after the commit is on disk');
  await stopServe(t);
});

test.serial("a small PUT is durable through the database's WAL: its bytes commit with its row, and after a crash that lost its blob recovery writes it again", async (t) => {
  if (!hasTool('strace')) return t.pass(missingToolMessage('strace'));
  const { configFile, dataDir, token } = await prepare('journal');
  serve = await startServe(configFile);
  const created = await rawRequest(`${serve.url}/api/v1/events`, {
    method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ files: [] }),
  });
  const id = JSON.parse(created.body.toString()).id as string;
  const basic = `Basic ${b64('alice:alice-password-long')}`;
  const put = (name: string, body: Buffer) => rawRequest(`${serve!.url}/dav/${id}/${name}`, { method: 'PUT', headers: { authorization: basic }, body });
  t.is((await put('first.txt', Buffer.from('first'))).status, 201);

  // Flushes held 150 ms on their way back: the answer must wait for the WAL's, and no fsync of the blob is needed.
  const stopTrace = await attachStrace(serve.child.pid!, 'journal-strace.txt', ['-e', 'trace=fsync,fdatasync,rename,renameat,renameat2,write,writev', '-e', 'inject=fsync,fdatasync:delay_exit=150000']);
  const small = randomBytes(3000);
  t.is((await put('small.bin', small)).status, 201);
  // strace may not have printed the answer's write yet when the client has its bytes. Not the
  // 500 ms of the test above: the batch flush, about a second after the commit, must not run yet.
  for (let i = 0; i < 15 && !(await readFile(join(dir, 'journal-strace.txt'), 'utf8')).includes('HTTP/1.1 201'); i++) await sleep(20);
  const calls = completedCalls(await stopTrace());
  const renamed = calls.findIndex((c) => c.name.startsWith('rename') && c.args.includes(`/storage/${id}/`));
  const blob = /"([^"]+)"\)?$/.exec(calls[renamed]?.args.replace(/, \d+$/, '') ?? '')?.[1] ?? '';
  t.true(blob.startsWith(join(dataDir, 'storage', id) + '/'), 'the temp was renamed to its blob');
  const walSynced = calls.findIndex((c, k) => k > renamed && /^f(data)?sync$/.test(c.name) && c.args.includes('handoff.db-wal>'));
  const answer = calls.findIndex((c) => /^write/.test(c.name) && c.args.includes('socket:') && c.args.includes('HTTP/1.1 201'));
  t.true(answer >= 0, 'the 201 is in the trace');
  t.true(walSynced > renamed && walSynced < answer, 'answered after the WAL flush that follows the rename');
  t.false(calls.slice(0, answer).some((c) => /^f(data)?sync$/.test(c.name) && c.args.includes(`<${blob}>`)), 'the blob itself is not flushed before the answer');

  // Killed before the batch flush (about a second later): the blob is lost, as a power cut would lose it.
  serve.child.kill('SIGKILL');
  await serve.exited;
  serve = null;
  const db = await SqliteDatabase.open(join(dataDir, 'handoff.db'));
  const journaled = await db.query<{ data: Buffer }>('SELECT j.data FROM journaled_blobs j JOIN files f ON f.id = j.file_id WHERE f.path = ?', ['small.bin']);
  await db.close();
  t.is(journaled.length, 1, 'its bytes are in the database');
  t.true(journaled[0]?.data.equals(small));
  await writeFile(blob, small.subarray(0, 100));

  const check = spawnSync(process.execPath, [join(packageRoot(), 'dist', 'src', 'main.js'), 'check', '--config', configFile], { encoding: 'utf8' });
  t.regex(check.stdout, /small files rewritten from the database: 1/);
  serve = await startServe(configFile);
  const got = await rawRequest(`${serve.url}/dav/${id}/small.bin`, { headers: { authorization: basic } });
  t.is(got.status, 200);
  t.true(got.body.equals(small), 'recovery wrote the blob again from the database');
  t.true((await readFile(blob)).equals(small));
  const after = await SqliteDatabase.open(join(dataDir, 'handoff.db'));
  t.deepEqual(await after.query('SELECT id FROM journaled_blobs'), [], 'and then dropped its record');
  await after.close();
  await stopServe(t);
});

test.serial('upload writes run on the event loop until one stalls, then on the thread pool', async (t) => {
  if (!hasTool('strace')) return t.pass(missingToolMessage('strace'));
  const ready = await serveWithEvent('stall');
  const { id, basic } = ready;
  serve = ready.serve;
  const pid = serve.child.pid!;

  // Every positioned write is held 30 ms, longer than the 20 ms a page-cache copy may take.
  const stopTrace = await attachStrace(pid, 'stall-strace.txt', ['-e', 'trace=pwrite64,pwritev', '-e', 'inject=pwrite64,pwritev:delay_exit=30000']);
  // Random bytes, so a staged slab written at the wrong offset or out of order would show.
  const body = randomBytes(8 * 1024 * 1024);
  const put = await rawRequest(`${serve.url}/dav/${id}/stalled.bin`, { method: 'PUT', headers: { authorization: basic }, body });
  t.is(put.status, 201);
  const writes = completedCalls(await stopTrace()).filter((c) => /^pwrite/.test(c.name) && c.args.includes('/.partial/'));
  t.true(writes.length >= 2, `expected several writes to the temp file, saw ${writes.length}`);
  t.is(writes[0].tid, pid, 'the first write runs on the main thread');
  const onMain = writes.slice(1).filter((c) => c.tid === pid).length;
  t.is(onMain, 0, `after the stall every write runs on a pool thread (${onMain} of ${writes.length - 1} ran on the main thread)`);
  const got = await rawRequest(`${serve.url}/dav/${id}/stalled.bin`, { headers: { authorization: basic } });
  t.true(got.body.equals(body), 'the file is intact');
  await stopServe(t);
});

test.serial("a temp's close skips the thread pool until a call stalls, then uses it; its open always uses it", async (t) => {
  if (!hasTool('strace')) return t.pass(missingToolMessage('strace'));
  const ready = await serveWithEvent('stall-open');
  const { id, basic } = ready;
  serve = ready.serve;
  const pid = serve.child.pid!;
  // A temp is closed after the commit renamed it, so strace -y names its blob: a file right in the
  // event's folder. (From the third upload into an event on, temps are spares made earlier.)
  const blobCloses = (trace: string) => completedCalls(trace).filter((c) => c.name === 'close' && new RegExp(`^\\d+<[^>]*/${id}/[0-9a-z][^/>]*>`).test(c.args));

  let stopTrace = await attachStrace(pid, 'open-strace.txt', ['-e', 'trace=openat,close']);
  t.is((await rawRequest(`${serve.url}/dav/${id}/quick.bin`, { method: 'PUT', headers: { authorization: basic }, body: Buffer.from('quick') })).status, 201);
  const trace = await stopTrace();
  const open = completedCalls(trace).find((c) => c.name === 'openat' && c.args.includes('/.partial/'));
  const [close] = blobCloses(trace);
  t.truthy(open && close, 'the temp was opened and closed');
  t.not(open?.tid, pid, 'the temp is opened on a pool thread (a create can wait for the disk)');
  t.is(close?.tid, pid, 'the temp is closed on the main thread');

  // Writes held 30 ms (longer than the 20 ms allowed) send closes to the pool as well.
  stopTrace = await attachStrace(pid, 'open-stall-strace.txt', ['-e', 'trace=openat,close,pwrite64,pwritev', '-e', 'inject=pwrite64,pwritev:delay_exit=30000']);
  t.is((await rawRequest(`${serve.url}/dav/${id}/slow.bin`, { method: 'PUT', headers: { authorization: basic }, body: Buffer.from('slow') })).status, 201);
  const [slow] = blobCloses(await stopTrace());
  stopTrace = await attachStrace(pid, 'open-after-strace.txt', ['-e', 'trace=openat,close']);
  t.is((await rawRequest(`${serve.url}/dav/${id}/after.bin`, { method: 'PUT', headers: { authorization: basic }, body: Buffer.from('after') })).status, 201);
  const [after] = blobCloses(await stopTrace());
  t.truthy(slow && after, 'both temps were closed');
  t.not(slow?.tid, pid, 'the temp whose write stalled closes on a pool thread');
  t.not(after?.tid, pid, 'so does the next one');
  await stopServe(t);
});

test.serial('SFTP connections are accepted with TCP_NODELAY (a reply never waits for the previous one to be acknowledged)', async (t) => {
  if (!hasTool('strace')) return t.pass(missingToolMessage('strace'));
  const ready = await serveWithEvent('nodelay');
  serve = ready.serve;
  const port = Number(/sftp listening on [^:\s]+:(\d+)/.exec(serve.stdout())?.[1]);
  t.true(port > 0, 'the SFTP port is announced');
  // -y twice: socket descriptors are shown with their TCP addresses.
  const stopTrace = await attachStrace(serve.child.pid!, 'nodelay-strace.txt', ['-y', '-e', 'trace=setsockopt']);
  const banner = await new Promise<string>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('data', (d) => {
      socket.destroy();
      resolve(d.toString());
    });
    socket.once('error', reject);
  });
  t.regex(banner, /^SSH-2\.0-/);
  const calls = completedCalls(await stopTrace()).filter((c) => c.name === 'setsockopt' && c.args.includes(`127.0.0.1:${port}->`));
  t.true(calls.some((c) => /TCP_NODELAY, \[1\]/.test(c.args)), `no TCP_NODELAY on the SFTP connection: ${JSON.stringify(calls)}`);
  await stopServe(t);
});
