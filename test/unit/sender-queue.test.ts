import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lockHolder, UploaderLock } from '../../src/client/lock.js';
import { hasPendingWork, newQueueFile, Queue, type QueueState } from '../../src/client/queue.js';
import { walkPaths } from '../../src/client/walk.js';

let dir: string;
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'handoff-queue-'));
  process.env.XDG_DATA_HOME = join(dir, 'data');
});
test.after.always(() => rm(dir, { recursive: true, force: true }));

test.serial('one uploader per queue: a live holder keeps the lock, a dead one is taken over', async (t) => {
  const file = join(dir, 'lock');
  const a = new UploaderLock(file);
  const b = new UploaderLock(file);
  t.true(await a.acquire());
  t.false(await b.acquire(), 'same process, other holder');
  t.is(await lockHolder(file), null, 'this test process is not an uploader, so its pid counts as dead');
  await a.release();
  // A lock left by a killed process (pid that no longer exists) is stale.
  const dead = spawn(process.execPath, ['-e', '0']);
  const pid = await new Promise<number>((done) => dead.on('exit', () => done(dead.pid!)));
  await writeFile(file, JSON.stringify({ pid, nonce: 'x', at: Date.now() }));
  t.true(await b.acquire());
  t.true(await b.stillHeld());
  await b.release();
  await t.throwsAsync(stat(file));
});

test.serial('queue state is written 0600 and additions wait in incoming/', async (t) => {
  const q = new Queue('abcdefghijklmnopqrstuvwxyz');
  await q.ensure();
  const state: QueueState = {
    version: 1, eventId: q.eventId, server: 'http://x', token: 'hnd_secret', expiresAt: null,
    files: [newQueueFile({ path: 'a', localPath: '/a', size: 1, mtimeMs: 1 }, { state: 'done' })],
    uploader: { pid: 0, state: 'finished', updatedAt: Date.now(), rate: 0 },
  };
  await q.write(state);
  t.is((await stat(q.stateFile)).mode & 0o777, 0o600);
  t.false(await hasPendingWork(q));
  await q.enqueue([newQueueFile({ path: 'b', localPath: '/b', size: 2, mtimeMs: 2 })]);
  t.true(await hasPendingWork(q));
  const inc = await q.incoming();
  t.is(inc.length, 1);
  t.is(inc[0].files[0].path, 'b');
  await q.dropIncoming(inc[0].name);
  t.false(await hasPendingWork(q));
});

test('walkPaths keeps a folder as the top folder and refuses a missing path with one line', async (t) => {
  const root = join(dir, 'walk');
  await rm(root, { recursive: true, force: true });
  await import('node:fs/promises').then((fs) => fs.mkdir(join(root, 'pics', 'sub'), { recursive: true }));
  await writeFile(join(root, 'pics', 'a.jpg'), 'a');
  await writeFile(join(root, 'pics', 'sub', 'b.jpg'), 'bb');
  await writeFile(join(root, 'c.txt'), 'ccc');
  const files = await walkPaths([join(root, 'pics'), join(root, 'c.txt')]);
  t.deepEqual(files.map((f) => [f.path, f.size]), [['pics/a.jpg', 1], ['pics/sub/b.jpg', 2], ['c.txt', 3]]);
  t.deepEqual((await walkPaths([join(root, 'c.txt')], 'docs/')).map((f) => f.path), ['docs/c.txt']);
  const err = await t.throwsAsync(walkPaths([join(root, 'nope')]));
  t.regex(err!.message, /nope: no such file or folder/);
  await t.throwsAsync(walkPaths([join(root, 'c.txt'), join(root, 'c.txt')]), { message: /two files would both be c\.txt/ });
});
