import test from 'ava';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LocalBackend } from '../../src/cache/backends/LocalBackend.js';
import { randomId } from '../../src/shared/ids.js';

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

/** The spares' folder next to `.partial`. */
const spareDir = (partial: string): string => join(partial, '..', '.spare');
const spares = async (partial: string): Promise<string[]> => (await readdir(spareDir(partial)).catch(() => [] as string[])).filter((n) => n.startsWith('spare-'));

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
      await w.writeAt(Buffer.from(`file ${i}`), 0);
      await w.commit(`blob-${i}`);
    }
    // A full stock (8), so the spare taken below is one of these.
    const before = await waitForSpares(partial, 8);

    const id = randomId(26);
    const w = await backend.openTemp(eventId, id, true, true);
    t.false((await readdir(partial)).includes(id), 'no file under its id: it writes to a spare');
    await w.writeAt(Buffer.from('hello spare'), 0);
    // A follower finds it by its id.
    t.is(await backend.tempSize(eventId, id), 11);
    const reader = await backend.openTempReader(eventId, id);
    const buf = Buffer.alloc(32);
    t.is(buf.subarray(0, await reader.read(buf, 0, 32, 0)).toString(), 'hello spare');
    await reader.close();
    await w.commit('blob-spare');
    t.is(await readFile(join(partial, '..', 'blob-spare'), 'utf8'), 'hello spare');
    t.deepEqual(await readdir(partial), [], 'no temp left');
    const after = await spares(partial);
    t.true(before.some((n) => !after.includes(n)), 'the spare it used is gone');
    t.is(await backend.tempSize(eventId, id), null, 'after the commit its id names no temp');

    // Aborted on a spare: discardTemp removes what it wrote.
    const gone = randomId(26);
    const w2 = await backend.openTemp(eventId, gone, true, true);
    await w2.writeAt(Buffer.from('partial'), 0);
    await w2.close();
    t.is(await backend.tempSize(eventId, gone), 7);
    // What an aborted upload wrote to a spare is a temp the sweep sees; empty spares are not.
    const listed = await backend.listTempItems(eventId);
    t.is(listed.length, 1);
    t.is(listed[0].size, 7);
    await backend.discardTemp(eventId, gone);
    t.is(await backend.tempSize(eventId, gone), null);
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

test("an earlier process's spares are removed before an event's first new ones", (t) =>
  withBackend(async (backend, partial, eventId) => {
    await mkdir(spareDir(partial), { recursive: true });
    await writeFile(join(spareDir(partial), 'spare-leftover0000000000'), '');
    await writeFile(join(spareDir(partial), 'spare-withbytes000000000'), 'abc');
    t.deepEqual((await backend.listTempItems(eventId)).map((i) => i.name), ['spare-withbytes000000000'], 'the one with bytes is a temp for the sweep');
    for (let i = 0; i < 2; i++) await (await backend.openTemp(eventId, randomId(26), true, true)).close();
    const now = await waitForSpares(partial, 8);
    t.false(now.includes('spare-leftover0000000000'));
    t.false(now.includes('spare-withbytes000000000'));
  }));
