import test from 'ava';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import { Gateway } from '../../src/gateway.js';
import { createLogger } from '../../src/shared/log.js';
import { TEST_CONFIG } from '../helpers/gateway.js';

let dir: string;
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'handoff-recovery-'));
});
test.after.always(async () => rm(dir, { recursive: true, force: true }));

type Json = Parameters<typeof parseConfig>[0];

/**
 * A non-resumable upload (the path WebDAV PUT and SFTP take) interrupted by a crash: the process
 * never reaches finish() or abort(). This tree has no WebDAV/SFTP front-end yet, so the upload is
 * driven through FileSession directly, exactly as those front-ends do.
 */
test('start-up recovery drops interrupted non-resumable uploads, resets states, removes strays and recomputes quota', async (t) => {
  const config = parseConfig({ ...(TEST_CONFIG as object), dataDir: dir } as Json);
  const g1 = await Gateway.create(config, { log: createLogger('silent') });
  await g1.accounts.add('bob', 'sender', 'bob-password-long');
  const bob = (await g1.db.get<{ id: number }>("SELECT id FROM users WHERE name = 'bob'"))!;
  const principal = { kind: 'sender' as const, id: bob.id, name: 'bob' };
  const { event } = await g1.events.create(principal, { files: [{ path: 'dav.bin', size: 1000 }, { path: 'kept.txt', size: 2 }] });
  const session = await g1.events.open(principal, event.id, { protocol: 'cli', ip: '127.0.0.1' });
  const kept = await session.beginWrite('kept.txt', { length: 2, sha256: null, createParents: false, resumable: false });
  await kept.writeAt(Buffer.from('ok'), 0);
  await kept.finish();
  const dav = await session.beginWrite('dav.bin', { length: 1000, sha256: null, createParents: false, resumable: false });
  await dav.writeAt(Buffer.alloc(500, 9), 0);
  const temp = join(dir, 'storage', event.id, '.partial', dav.id);
  t.true(existsSync(temp));
  // Corrupt the bookkeeping the way a crash between two writes could, then "crash" (no finish, no abort).
  await g1.db.run('UPDATE events SET used_bytes = 123456 WHERE id = ?', [event.id]);
  await writeFile(join(dir, 'storage', event.id, 'strayblob000000000000000000'), 'x');
  await g1.db.run("INSERT INTO retention_runs (started_at, status) VALUES (?, 'running')", [Date.now()]);
  await g1.stop(0);

  const report = await Gateway.create(config, { log: createLogger('silent'), recovery: 'report' });
  t.like(report.recovery, { quickCheck: 'ok', uploadsDropped: 1, statesReset: 0, orphanBlobs: 1, quotaFixed: 1, interruptedRuns: 1 });
  t.true(existsSync(temp), 'report mode changes nothing');
  await report.stop(0);

  const g2 = await Gateway.create(config, { log: createLogger('silent') });
  t.like(g2.recovery, { quickCheck: 'ok', uploadsDropped: 1, orphanBlobs: 1, quotaFixed: 1, interruptedRuns: 1 });
  t.false(existsSync(temp), 'temp of the interrupted upload removed');
  const view = await g2.events.get(principal, event.id);
  t.deepEqual(view.files.map((f) => [f.path, f.state]), [['dav.bin', 'pending'], ['kept.txt', 'complete']]);
  const q = await g2.db.get<{ used_bytes: number; reserved_bytes: number }>('SELECT used_bytes, reserved_bytes FROM events WHERE id = ?', [event.id]);
  t.deepEqual(q, { used_bytes: 2, reserved_bytes: 0 });
  t.is((await g2.db.get<{ status: string }>('SELECT status FROM retention_runs ORDER BY id DESC'))?.status, 'interrupted');
  await g2.stop(0);

  const g3 = await Gateway.create(config, { log: createLogger('silent') });
  t.like(g3.recovery, { uploadsDropped: 0, statesReset: 0, orphanBlobs: 0, quotaFixed: 0, tempsRemoved: 0, interruptedRuns: 0 }, 'a second start finds nothing left');
  await g3.stop(0);
});

/**
 * WebDAV PUT and SFTP uploads of new (unannounced) files write nothing to the database until their
 * commit: these are the cases where that could go wrong.
 */
test('an unannounced upload has no row until its commit; a crash leaves only a temp; a folder removed meanwhile fails the commit cleanly', async (t) => {
  const sub = join(dir, 'lazy');
  const config = parseConfig({ ...(TEST_CONFIG as object), dataDir: sub } as Json);
  const g1 = await Gateway.create(config, { log: createLogger('silent') });
  await g1.accounts.add('carol', 'sender', 'carol-password-long');
  const carol = (await g1.db.get<{ id: number }>("SELECT id FROM users WHERE name = 'carol'"))!;
  const principal = { kind: 'sender' as const, id: carol.id, name: 'carol' };
  const { event } = await g1.events.create(principal, { files: [] });
  const session = await g1.events.open(principal, event.id, { protocol: 'webdav', ip: '127.0.0.1' });
  const rows = async () => (await g1.db.query<{ path: string; state: string }>('SELECT path, state FROM files WHERE event_id = ? ORDER BY path', [event.id])).map((r) => `${r.path}:${r.state}`);
  const uploads = async () => (await g1.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM uploads'))!.n;

  const up = await session.beginWrite('new.txt', { length: 5, sha256: null, createParents: false, resumable: false });
  await up.writeAt(Buffer.from('hello'), 0);
  t.deepEqual(await rows(), [], 'nothing in the database while the bytes arrive');
  t.is(await uploads(), 0);
  const done = await up.finish();
  t.like(done, { path: 'new.txt', state: 'complete', bytes: 5, size: null });
  t.deepEqual(await rows(), ['new.txt:complete']);
  t.is((await g1.db.get<{ used_bytes: number }>('SELECT used_bytes FROM events WHERE id = ?', [event.id]))!.used_bytes, 5);

  // Overwrite: the old content stays served until the commit, then the quota counts the new size only.
  const over = await session.beginWrite('new.txt', { length: 3, sha256: null, createParents: false, resumable: false });
  await over.writeAt(Buffer.from('bye'), 0);
  t.is((await session.stat('new.txt')).size, 5);
  await over.finish();
  t.is((await session.stat('new.txt')).size, 3);
  t.is((await g1.db.get<{ used_bytes: number }>('SELECT used_bytes FROM events WHERE id = ?', [event.id]))!.used_bytes, 3);

  // Missing folder: refused before any byte; folder removed during the upload: refused at commit, nothing left.
  await t.throwsAsync(session.beginWrite('nodir/x.txt', { length: 1, sha256: null, createParents: false, resumable: false }), { message: /does not exist/ });
  await session.mkdir('dir');
  const orphan = await session.beginWrite('dir/x.txt', { length: 1, sha256: null, createParents: false, resumable: false });
  await orphan.writeAt(Buffer.from('x'), 0);
  await session.remove('dir', { recursive: true });
  await t.throwsAsync(orphan.finish(), { message: /does not exist/ });
  t.deepEqual(await rows(), ['new.txt:complete']);
  const storage = join(sub, 'storage', event.id);
  const { readdir } = await import('node:fs/promises');
  t.deepEqual(await readdir(join(storage, '.partial')), [], 'the failed upload left no temp');

  // A declared length beyond the quota is refused before a temp exists.
  await t.throwsAsync(session.beginWrite('huge.bin', { length: 10 * 2 ** 40, sha256: null, createParents: false, resumable: false }), { message: /quota/ });
  t.deepEqual(await readdir(join(storage, '.partial')), []);

  // Crash mid-upload: only the temp exists, and start-up removes it.
  // (By now the event is busy enough to have spare temps: the upload writes to one of those, an
  // empty file among the blobs, so start-up counts what it wrote as an orphan blob.)
  const committed = new Set((await g1.db.query<{ blob: string }>('SELECT blob FROM files WHERE event_id = ? AND blob IS NOT NULL', [event.id])).map((r) => r.blob));
  const withBytes = async () => {
    const found: string[] = [];
    for (const sub of ['.partial', '.']) {
      for (const name of await readdir(join(storage, sub)).catch(() => [] as string[])) {
        const s = await stat(join(storage, sub, name));
        if (s.isFile() && s.size > 0 && !committed.has(name)) found.push(`${sub}/${name}`);
      }
    }
    return found;
  };
  const crashed = await session.beginWrite('crash.bin', { length: 100, sha256: null, createParents: false, resumable: false });
  await crashed.writeAt(Buffer.alloc(50, 1), 0);
  t.is((await withBytes()).length, 1, 'its bytes are in one temp');
  await g1.stop(0);
  const g2 = await Gateway.create(config, { log: createLogger('silent') });
  t.like(g2.recovery, { uploadsDropped: 0, statesReset: 0, tempsRemoved: 0, quotaFixed: 0 });
  t.true(g2.recovery!.orphanBlobs >= 1, 'the spare it wrote to, with the empty spares left');
  t.deepEqual(await withBytes(), [], 'start-up removed it');
  t.deepEqual((await g2.db.query<{ path: string }>('SELECT path FROM files WHERE event_id = ?', [event.id])).map((r) => r.path), ['new.txt']);
  await g2.stop(0);
});
