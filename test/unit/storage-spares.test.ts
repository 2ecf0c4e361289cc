import test from 'ava';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LocalBackend } from '../../src/cache/backends/LocalBackend.js';
import { randomId } from '../../src/shared/ids.js';
import { SpareTemps } from '../../src/cache/backends/spareTemps.js';
import type { RawFile } from '../../src/cache/backends/rawFile.js';

// Spare temps (src/cache/backends/spareTemps.ts) on a real folder: what LocalBackend promises about
// a temp stays true when the upload writes to a spare instead of a file named after its id.

async function withBackend(fn: (b: LocalBackend, partial: string, eventId: string) => Promise<void>): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'handoff-spares-'));
  const backend = new LocalBackend(root);
  await backend.init();
  const eventId = randomId(26);
  await backend.createContainer(eventId);
  try {
    await fn(backend, join(root, eventId, '.partial'), eventId);
  } finally {
    await backend.close();
    await rm(root, { recursive: true, force: true });
  }
}

/** Spares are empty files among the event's blobs (next to `.partial`), under blob names. */
const eventDir = (partial: string): string => join(partial, '..');
const spares = async (partial: string): Promise<string[]> => {
  const found: string[] = [];
  for (const e of await readdir(eventDir(partial), { withFileTypes: true }).catch(() => [])) {
    if (e.isFile() && (await stat(join(eventDir(partial), e.name))).size === 0) found.push(e.name);
  }
  return found;
};

async function waitForSpares(partial: string, n: number): Promise<string[]> {
  for (let i = 0; i < 200; i++) {
    const found = await spares(partial);
    if (found.length >= n) return found;
    await sleep(10);
  }
  throw new Error(`fewer than ${n} spares appeared`);
}

test('a busy event gets spare temps; an upload on one reads, commits and discards like any temp', (t) =>
  withBackend(async (backend, partial, eventId) => {
    // The first upload only marks the event; the second starts the stock.
    for (let i = 0; i < 2; i++) {
      const id = randomId(26);
      const w = await backend.openTemp(eventId, id, true, true);
      t.true((await readdir(partial)).includes(id), 'made under its own id while there is no spare');
      t.is(w.placedAs, null);
      await w.writeAt(Buffer.from(`file ${i}`), 0);
      await w.commit(`blob-${i}`);
    }
    // A full stock (8), so the spare taken below is one of these.
    const before = await waitForSpares(partial, 8);

    const id = randomId(26);
    const w = await backend.openTemp(eventId, id, true, true);
    t.false((await readdir(partial)).includes(id), 'no file under its id: it writes to a spare');
    t.true(w.placedAs !== null && before.includes(w.placedAs), 'the spare is one of the stock, under a blob name');
    const placed = w.placedAs!;
    await w.writeAt(Buffer.from('hello spare'), 0);
    // A follower finds it by its id.
    t.is(await backend.tempSize(eventId, id), 11);
    const reader = await backend.openTempReader(eventId, id);
    const buf = Buffer.alloc(32);
    t.is(buf.subarray(0, await reader.read(buf, 0, 32, 0)).toString(), 'hello spare');
    await reader.close();
    // Committed under its own name: nothing is renamed.
    await w.commit(placed);
    t.is(await readFile(join(eventDir(partial), placed), 'utf8'), 'hello spare');
    t.deepEqual(await readdir(partial), [], 'no temp left');
    t.false((await spares(partial)).includes(placed), 'the spare it used is a blob now');
    t.is(await backend.tempSize(eventId, id), null, 'after the commit its id names no temp');

    // Committed under another name, a spare is renamed like any temp.
    const other = await backend.openTemp(eventId, randomId(26), true, true);
    const otherName = other.placedAs!;
    t.truthy(otherName);
    await other.writeAt(Buffer.from('renamed!!'), 0);
    await other.commit('blob-other');
    t.is(await readFile(join(eventDir(partial), 'blob-other'), 'utf8'), 'renamed!!');
    t.false((await readdir(eventDir(partial))).includes(otherName));

    // Aborted on a spare: discardTemp removes what it wrote.
    const gone = randomId(26);
    const w2 = await backend.openTemp(eventId, gone, true, true);
    await w2.writeAt(Buffer.from('partial'), 0);
    await w2.close();
    t.is(await backend.tempSize(eventId, gone), 7);
    // What an aborted upload wrote to a spare is an unreferenced blob to the sweep, not a temp.
    t.deepEqual(await backend.listTempItems(eventId), []);
    t.true((await backend.listBlobs(eventId)).some((b) => b.size === 7));
    await backend.discardTemp(eventId, gone);
    t.is(await backend.tempSize(eventId, gone), null);
    t.false((await backend.listBlobs(eventId)).some((b) => b.size === 7), 'discarding it removes the file');
  }));

test('a resumable temp never takes a spare: it must be found by its id after a restart', (t) =>
  withBackend(async (backend, partial, eventId) => {
    for (let i = 0; i < 2; i++) await (await backend.openTemp(eventId, randomId(26), true, true)).close();
    await waitForSpares(partial, 4);
    const id = randomId(26);
    const w = await backend.openTemp(eventId, id, true);
    await w.writeAt(Buffer.from('tus'), 0);
    await w.close();
    t.is(await readFile(join(partial, id), 'utf8'), 'tus');
  }));

test('closing the backend removes its spares; removing the event closes them first', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'handoff-spares-'));
  try {
    const backend = new LocalBackend(root);
    await backend.init();
    const [a, b] = [randomId(26), randomId(26)];
    for (const e of [a, b]) {
      await backend.createContainer(e);
      for (let i = 0; i < 2; i++) await (await backend.openTemp(e, randomId(26), true, true)).close();
      await waitForSpares(join(root, e, '.partial'), 4);
    }
    await backend.removeContainer(a);
    t.deepEqual((await readdir(root)).includes(a), false);
    await backend.close();
    t.deepEqual(await spares(join(root, b, '.partial')), []);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('spares are taken oldest first, so none waits long enough for the sweep to take it', async (t) => {
  // The order of creation is what matters here, not file times (coarse on ext4): a source that records it.
  const made: string[] = [];
  const fh = { close: async () => undefined } as unknown as RawFile;
  const stock = new SpareTemps({
    prepare: async () => undefined,
    pathOf: (_eventId, name) => join(tmpdir(), 'never-created', name),
    create: async (path) => {
      made.push(path);
      return fh;
    },
  });
  try {
    t.is(stock.take('ev'), null, 'the first upload only marks the event');
    t.is(stock.take('ev'), null, 'the second starts the stock');
    for (let i = 0; i < 200 && made.length < 8; i++) await sleep(5);
    t.is(made.length, 8);
    t.is(stock.take('ev')?.path, made[0]);
    t.is(stock.take('ev')?.path, made[1]);
  } finally {
    // Its files were never made: dropping them only fails quietly.
    await stock.close();
  }
});

test("an earlier version's spares folder is removed before an event's first spares", (t) =>
  withBackend(async (backend, partial, eventId) => {
    const old = join(eventDir(partial), '.spare');
    await mkdir(old, { recursive: true });
    await writeFile(join(old, 'spare-leftover0000000000'), '');
    for (let i = 0; i < 2; i++) await (await backend.openTemp(eventId, randomId(26), true, true)).close();
    await waitForSpares(partial, 8);
    await t.throwsAsync(stat(old), { code: 'ENOENT' });
  }));
