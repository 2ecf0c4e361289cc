import test from 'ava';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Checkpointer } from '../../src/db/checkpointer.js';
import { SqliteDatabase } from '../../src/db/sqlite.js';
import { GatewayError } from '../../src/shared/errors.js';

/** A fresh database with table kv; `seed` adds the row ('a', 1). */
async function withDb(fn: (db: SqliteDatabase) => Promise<void>, opts: { seed?: boolean; inlineFlushStallMs?: number } = {}): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'handoff-sqlite-unit-'));
  const db = await SqliteDatabase.open(join(dir, 'db'), { inlineFlushStallMs: opts.inlineFlushStallMs });
  try {
    await db.exec('CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL)');
    if (opts.seed !== false) await db.run("INSERT INTO kv (k, v) VALUES ('a', 1)");
    await fn(db);
  } finally {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  }
}

test('reads outside a transaction see committed rows only, whichever connection serves them', (t) =>
  withDb(async (db) => {
    t.is((await db.get<{ v: number }>("SELECT v FROM kv WHERE k = 'a'"))?.v, 1);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const writing = db.transaction(async (tx) => {
      await tx.run("UPDATE kv SET v = 2 WHERE k = 'a'");
      await tx.run("INSERT INTO kv (k, v) VALUES ('b', 3)");
      await held;
    });
    // The transaction is open and awaiting: another request's reads must not see its rows.
    await new Promise((r) => setImmediate(r));
    t.is((await db.get<{ v: number }>("SELECT v FROM kv WHERE k = 'a'"))?.v, 1);
    t.deepEqual(await db.query("SELECT k FROM kv ORDER BY k"), [{ k: 'a' }]);
    release();
    await writing;
    t.is((await db.get<{ v: number }>("SELECT v FROM kv WHERE k = 'a'"))?.v, 2);
    t.deepEqual(await db.query("SELECT k FROM kv ORDER BY k"), [{ k: 'a' }, { k: 'b' }]);
  }));

test('a rolled-back transaction leaves nothing visible', (t) =>
  withDb(async (db) => {
    await t.throwsAsync(
      db.transaction(async (tx) => {
        await tx.run("UPDATE kv SET v = 9 WHERE k = 'a'");
        throw new Error('refused');
      }),
      { message: 'refused' },
    );
    t.is((await db.get<{ v: number }>("SELECT v FROM kv WHERE k = 'a'"))?.v, 1);
  }));

test('a write statement through the read methods is refused and changes nothing', (t) =>
  withDb(async (db) => {
    await t.throwsAsync(db.query("UPDATE kv SET v = 5 WHERE k = 'a'"), { message: /inside a transaction/ });
    await t.throwsAsync(db.get("DELETE FROM kv WHERE k = 'a'"), { message: /inside a transaction/ });
    t.is((await db.get<{ v: number }>("SELECT v FROM kv WHERE k = 'a'"))?.v, 1);
  }));

test('once close begins, new statements get `unavailable`; the transaction in progress still commits', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'handoff-sqlite-unit-'));
  const file = join(dir, 'db');
  try {
    const db = await SqliteDatabase.open(file);
    await db.exec('CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL)');
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const writing = db.transaction(async (tx) => {
      await tx.run("INSERT INTO kv (k, v) VALUES ('late', 1)");
      await held;
    });
    await new Promise((r) => setImmediate(r));
    const closing = db.close();
    await t.throwsAsync(db.get('SELECT 1 AS one'), { instanceOf: GatewayError, message: /shutting down/ });
    const refused = await db.run("INSERT INTO kv (k, v) VALUES ('refused', 2)").catch((err: unknown) => err);
    t.true(refused instanceof GatewayError && refused.code === 'unavailable');
    release();
    await writing;
    await closing;
    const again = await SqliteDatabase.open(file);
    t.deepEqual(await again.query('SELECT k FROM kv ORDER BY k'), [{ k: 'late' }]);
    await again.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** An empty kv table on a database whose lone-commit flushes count as stalled past `stallMs`. */
const withFlushDb = (stallMs: number, fn: (db: SqliteDatabase) => Promise<void>) => withDb(fn, { seed: false, inlineFlushStallMs: stallMs });

test('a lone durable commit flushes the WAL on the calling thread; concurrent commits share flushes on the pool', (t) =>
  // A generous stall limit: a slow disk must not send these flushes to the pool.
  withFlushDb(60_000, async (db) => {
    const before = db.flushes();
    for (let i = 0; i < 20; i++) await db.run('INSERT INTO kv (k, v) VALUES (?, ?)', [`s${i}`, i]);
    const sequential = db.flushes();
    // A commit that meets the checkpoint worker at work flushes on the pool: a few may.
    const seqInline = sequential.inline - before.inline;
    t.true(seqInline >= 15, JSON.stringify({ before, sequential }));
    t.is(seqInline + sequential.pooled - before.pooled, 20);

    await Promise.all(Array.from({ length: 40 }, (_, i) => db.run('INSERT INTO kv (k, v) VALUES (?, ?)', [`c${i}`, i])));
    const concurrent = db.flushes();
    const pooled = concurrent.pooled - sequential.pooled;
    const inline = concurrent.inline - sequential.inline;
    // Only the last of the 40 can find itself alone; the others wait for shared pool flushes.
    t.true(inline <= 1, JSON.stringify(concurrent));
    t.true(pooled >= 1 && pooled + inline < 40, `${pooled} pooled and ${inline} inline flushes for 40 concurrent commits`);
    t.deepEqual(await db.get('SELECT COUNT(*) AS n FROM kv'), { n: 60 });
  }));

test('a WAL flush slower than the stall limit sends the next lone commits to the pool, for longer each time the probe stalls too', (t) =>
  // A limit no flush can meet: every inline flush counts as a stall (the first was CREATE TABLE's).
  withFlushDb(0, async (db) => {
    const before = db.flushes();
    for (let i = 0; i < 30; i++) await db.run('INSERT INTO kv (k, v) VALUES (?, ?)', [`s${i}`, i]);
    const after = db.flushes();
    const inline = after.inline - before.inline;
    // Back-offs of 0.1, 0.2, 0.4, 0.8 s...: however slow this machine, only a few probes fit.
    t.true(inline <= 4, JSON.stringify({ before, after }));
    t.is(after.pooled - before.pooled, 30 - inline);
    t.deepEqual(await db.get('SELECT COUNT(*) AS n FROM kv'), { n: 30 });
  }));

test('during a bulk flush of the storage a lone commit flushes on the pool', (t) =>
  withFlushDb(60_000, async (db) => {
    const before = db.flushes();
    await db.duringBulkFlush(async () => {
      for (let i = 0; i < 5; i++) await db.run('INSERT INTO kv (k, v) VALUES (?, ?)', [`b${i}`, i]);
    });
    const during = db.flushes();
    t.is(during.inline, before.inline);
    t.is(during.pooled - before.pooled, 5);
    for (let i = 0; i < 5; i++) await db.run('INSERT INTO kv (k, v) VALUES (?, ?)', [`a${i}`, i]);
    t.true(db.flushes().inline >= during.inline + 3, 'inline again once it ended');
  }));

test('WAL checkpoints run in the worker, restart a WAL that grew past the limit, and keep every row', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'handoff-sqlite-unit-'));
  const file = join(dir, 'db');
  try {
    const db = await SqliteDatabase.open(file, { checkpoint: { restartBytes: 256 * 1024, delayMs: 5 } });
    await db.exec('CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB NOT NULL)');
    t.deepEqual(await db.query('PRAGMA wal_autocheckpoint'), [{ wal_autocheckpoint: 0 }]);
    const value = Buffer.alloc(2000, 7);
    let maxWal = 0;
    for (let i = 0; i < 2000; i++) {
      await db.run('INSERT INTO kv (k, v) VALUES (?, ?)', [`k${i}`, value]);
      if (i % 50 === 0) {
        maxWal = Math.max(maxWal, (await stat(`${file}-wal`)).size);
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    const stats = db.checkpoints();
    t.true(stats.offThread, stats.lastError ?? '');
    t.true(stats.runs > 0 && stats.frames > 0, JSON.stringify(stats));
    t.true(stats.restarts > 0, JSON.stringify(stats));
    // About 4 MB went through the WAL; restarts keep it near the limit, not at the total.
    t.true(maxWal < 2 * 1024 * 1024, `WAL reached ${maxWal} bytes`);
    // The file keeps its size (SQLite reuses it from the start), so a few small commits afterwards
    // must get PASSIVE checkpoints: judged by the file, each of them would wait for the writer.
    t.true((await stat(`${file}-wal`)).size > 256 * 1024);
    await new Promise((r) => setTimeout(r, 50));
    const settled = db.checkpoints();
    for (let i = 0; i < 10; i++) {
      await db.run('INSERT INTO kv (k, v) VALUES (?, ?)', [`quiet${i}`, Buffer.alloc(10)]);
      await new Promise((r) => setTimeout(r, 20));
    }
    const quiet = db.checkpoints();
    t.true(quiet.runs - settled.runs >= 5, JSON.stringify({ settled, quiet }));
    t.true(quiet.restarts - settled.restarts <= 1, `RESTART checkpoints for small commits: ${JSON.stringify({ settled, quiet })}`);
    await db.close();
    const again = await SqliteDatabase.open(file);
    t.deepEqual(await again.query('SELECT COUNT(*) AS n FROM kv'), [{ n: 2010 }]);
    await again.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a WAL file that grew past its size limit is cut back when the WAL restarts', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'handoff-sqlite-unit-'));
  const file = join(dir, 'db');
  const limit = 512 * 1024;
  try {
    const db = await SqliteDatabase.open(file, { checkpoint: { delayMs: 5 }, walSizeLimitBytes: limit });
    await db.exec('CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB NOT NULL)');
    // One transaction of ~3 MB: the WAL file must hold all of it until a checkpoint.
    await db.transaction(async (tx) => {
      for (let i = 0; i < 1500; i++) await tx.run('INSERT INTO kv (k, v) VALUES (?, ?)', [`big${i}`, Buffer.alloc(2000, 1)]);
    });
    const grown = (await stat(`${file}-wal`)).size;
    t.true(grown > 2 * 1024 * 1024, `WAL file after the burst: ${grown} bytes`);
    // Small commits with pauses: a checkpoint copies the burst back, the next commit restarts the WAL.
    let size = grown;
    for (let i = 0; i < 40 && size > limit; i++) {
      await new Promise((r) => setTimeout(r, 20));
      await db.run('INSERT INTO kv (k, v) VALUES (?, ?)', [`small${i}`, Buffer.alloc(10)]);
      size = (await stat(`${file}-wal`)).size;
    }
    t.true(size <= limit, `WAL file still ${size} bytes, limit ${limit}`);
    t.deepEqual(await db.query('SELECT COUNT(*) AS n FROM kv WHERE k LIKE ?', ['big%']), [{ n: 1500 }]);
    await db.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a checkpoint worker that cannot start hands checkpoints back to SQLite', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'handoff-sqlite-unit-'));
  try {
    const reason = await new Promise<string>((resolve) => {
      // The worker opens an existing database only: a missing file makes it fail at start.
      const c = new Checkpointer(join(dir, 'missing.db'), resolve);
      c.nudge();
    });
    t.regex(reason, /unable to open|exited|SQLITE_CANTOPEN|directory does not exist/i);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
