import test from 'ava';
import { existsSync } from 'node:fs';
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RunSummary } from '../../src/cache/jobs.js';
import { basic, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { rawRequest, tusCreate, tusHead, tusPatch } from '../helpers/ops.js';

// Every second, and partial uploads count as stale after 1.8 s.
let tg: TestGateway;
test.before(async () => {
  tg = await startTestGateway({ retention: { schedule: '* * * * * *', partialUploadHours: 0.0005 } });
});
test.after.always(async () => tg?.stop());

/**
 * Starts collecting run summaries now (runs come every second, so one may do the work while the
 * test is still setting up: a listener attached afterwards would miss it). `until` resolves once
 * `done` holds for the union of everything collected; bounded by a run count, not a clock.
 */
function collectRuns(): { until(done: (all: RunSummary[]) => boolean, maxRuns?: number): Promise<RunSummary[]> } {
  const seen: RunSummary[] = [];
  let runs = 0;
  let check: (() => void) | null = null;
  const off = tg.gateway.retention.onRun((r) => {
    if (!r.skipped) seen.push(r.summary);
    runs++;
    check?.();
  });
  return {
    until(done, maxRuns = 30) {
      const from = runs;
      return new Promise((resolve, reject) => {
        check = () => {
          if (done(seen)) {
            check = null;
            off();
            resolve(seen);
          } else if (runs - from >= maxRuns) {
            check = null;
            off();
            reject(new Error(`condition not met after ${maxRuns} runs: ${JSON.stringify(seen.at(-1))}`));
          }
        };
        check();
      });
    },
  };
}
const sum = (all: RunSummary[], k: keyof RunSummary) => all.reduce((n, s) => n + (s[k] as number), 0);

test.serial('expired event is purged on the next run: files gone, 410 on web and API, tombstone and log kept; recipients expire; stale partial removed', async (t) => {
  const collected = collectRuns();
  const s = await tg.sender();
  const bearer = `Bearer ${s.token}`;
  const a = await tg.api(s.token, 'POST', '/api/v1/events', { expires: '3s', files: [{ path: 'a.txt', size: 5 }], recipients: [{ name: 'Ann' }] });
  t.is(a.status, 201);
  const A = a.body.id as string;
  const ann = a.body.recipients[0];
  t.is((await tusCreate(tg.url, A, bearer, 'a.txt', 5, Buffer.from('hello'))).status, 201);
  t.is((await rawRequest(`${tg.url}/e/${A}/files/a.txt`, { headers: { authorization: basic(ann.username, ann.password) } })).body.toString(), 'hello');
  t.true(existsSync(join(tg.dataDir, 'storage', A)));

  const b = await tg.api(s.token, 'POST', '/api/v1/events', {
    expires: '1h', files: [{ path: 'b.txt', size: 3 }],
    recipients: [{ name: 'Bob', expires: '3s' }, { name: 'Cat', maxDownloads: 1 }, { name: 'Dan' }],
  });
  const B = b.body.id as string;
  const [bob, cat, dan] = b.body.recipients as Array<{ username: string; password: string }>;
  t.is((await tusCreate(tg.url, B, bearer, 'b.txt', 3, Buffer.from('bee'))).status, 201);
  const get = (r: { username: string; password: string }, path = '') => rawRequest(`${tg.url}/e/${B}/${path}`, { headers: { authorization: basic(r.username, r.password) } });
  t.is((await get(cat, 'files/b.txt')).status, 200);
  // 403 from the limit, or 401 if a run already marked Cat expired in between (runs every second).
  t.true([401, 403].includes((await get(cat, 'files/b.txt')).status), 'download limit reached');

  // A partial tus upload: 10 of 100 bytes, then abandoned.
  const partial = await tusCreate(tg.url, B, bearer, 'partial.bin', 100);
  t.is((await tusPatch(partial.location, bearer, 0, Buffer.alloc(10, 1))).status, 204);
  const uploadId = partial.location.split('/').pop()!;
  const temp = join(tg.dataDir, 'storage', B, '.partial', uploadId);
  t.true(existsSync(temp));

  const runs = await collected.until((all) => all.some((x) => x.eventsExpired.includes(A)) && sum(all, 'uploadsRemoved') >= 1 && sum(all, 'recipientsExpired') >= 2);
  t.true(runs.length >= 1);

  // Event A: storage gone, addresses answer 410, metadata and access log remain.
  t.false(existsSync(join(tg.dataDir, 'storage', A)), 'container removed');
  const annAuth = { authorization: basic(ann.username, ann.password) };
  t.is((await rawRequest(`${tg.url}/e/${A}/`, { headers: annAuth })).status, 410);
  t.is((await rawRequest(`${tg.url}/e/${A}/files/a.txt`, { headers: annAuth })).status, 410);
  t.is((await rawRequest(`${tg.url}/e/${A}/zip`, { headers: annAuth })).status, 410);
  t.is((await tusCreate(tg.url, A, bearer, 'more.txt', 1, Buffer.from('x'))).status, 410);
  t.is((await tg.api(s.token, 'DELETE', `/api/v1/events/${A}/files/a.txt`)).status, 410);
  const tomb = await tg.api(s.token, 'GET', `/api/v1/events/${A}`);
  t.is(tomb.status, 200);
  t.is(tomb.body.state, 'deleted');
  const log = await tg.api(s.token, 'GET', `/api/v1/events/${A}/log`);
  t.true(log.body.entries.some((e: { action: string }) => e.action === 'event.expire'));
  t.true(log.body.entries.some((e: { action: string }) => e.action === 'download'));

  // Recipients past their expiry or limit are refused; others keep working.
  t.is((await get(bob)).status, 401);
  t.is((await get(cat)).status, 401);
  t.is((await get(dan)).status, 200);
  const expired = await tg.gateway.db.query<{ name: string }>('SELECT name FROM recipients WHERE event_id = ? AND expired_at IS NOT NULL ORDER BY name', [B]);
  t.deepEqual(expired.map((r) => r.name), ['Bob', 'Cat']);

  // The stale partial upload: row, temp and reservation gone, the file back to pending.
  t.is((await tusHead(partial.location, bearer)).status, 404);
  t.false(existsSync(temp));
  const ev = await tg.gateway.db.get<{ used_bytes: number; reserved_bytes: number }>('SELECT used_bytes, reserved_bytes FROM events WHERE id = ?', [B]);
  t.deepEqual(ev, { used_bytes: 3, reserved_bytes: 0 });
  const view = await tg.api(s.token, 'GET', `/api/v1/events/${B}`);
  // It was never announced, so it disappears (an announced file would go back to pending).
  t.false(view.body.files.some((f: { path: string }) => f.path === 'partial.bin'));

  const ok = await tg.gateway.db.query<{ summary: string }>("SELECT summary FROM retention_runs WHERE status = 'ok' AND summary LIKE ?", [`%${A}%`]);
  t.is(ok.length, 1, 'the run that purged A is recorded with what it removed');
});

test.serial('a crash mid-run is finished by the next run: purged-but-present container, orphan blob and temp are swept', async (t) => {
  const collected = collectRuns();
  const s = await tg.sender();
  const c = await tg.api(s.token, 'POST', '/api/v1/events', { files: [{ path: 'c.txt', size: 2 }] });
  const C = c.body.id as string;
  t.is((await tusCreate(tg.url, C, `Bearer ${s.token}`, 'c.txt', 2, Buffer.from('cc'))).status, 201);
  const d = await tg.api(s.token, 'POST', '/api/v1/events', { files: [{ path: 'd.txt', size: 2 }] });
  const D = d.body.id as string;
  t.is((await tusCreate(tg.url, D, `Bearer ${s.token}`, 'd.txt', 2, Buffer.from('dd'))).status, 201);
  // As if the process died inside purge(): the tombstone committed, the container still on disk.
  await tg.gateway.db.run('UPDATE events SET purged_at = ? WHERE id = ?', [Date.now(), C]);
  // As if it died between rename and commit: a blob and a temp nobody points at.
  const old = new Date(Date.now() - 3_600_000);
  const orphan = join(tg.dataDir, 'storage', D, 'orphanblob0000000000000000');
  const strayTemp = join(tg.dataDir, 'storage', D, '.partial', 'straytemp000000000000000000');
  await mkdir(join(tg.dataDir, 'storage', D, '.partial'), { recursive: true });
  await writeFile(orphan, 'zz');
  await writeFile(strayTemp, 'yy');
  await utimes(orphan, old, old);
  await utimes(strayTemp, old, old);
  await collected.until((all) => sum(all, 'containersRemoved') >= 1 && sum(all, 'orphanBlobs') >= 1 && sum(all, 'tempsRemoved') >= 1);
  t.false(existsSync(join(tg.dataDir, 'storage', C)));
  t.false(existsSync(orphan));
  t.false(existsSync(strayTemp));
  t.is((await rawRequest(`${tg.url}/e/${D}/files/d.txt`, { headers: { authorization: `Bearer ${s.token}` } })).body.toString(), 'dd', 'live files untouched');
});

test.serial('after auditDays the access log, tombstones, lockout records and run records are pruned', async (t) => {
  const collected = collectRuns();
  const s = await tg.sender();
  const e = await tg.api(s.token, 'POST', '/api/v1/events', { files: [{ path: 'old.txt', size: 1 }] });
  const E = e.body.id as string;
  t.is((await tg.api(s.token, 'DELETE', `/api/v1/events/${E}`)).status, 204);
  t.is((await tg.api(s.token, 'GET', `/api/v1/events/${E}`)).body.state, 'deleted', 'a fresh tombstone stays');
  const longAgo = Date.now() - 91 * 86_400_000; // auditDays is 90
  const db = tg.gateway.db;
  await db.run('UPDATE events SET purged_at = ? WHERE id = ?', [longAgo, E]);
  await db.run("INSERT INTO access_log (event_id, at, who, protocol, action) VALUES ('someevent', ?, 'x', 'http', 'download')", [longAgo]);
  await db.run("INSERT INTO auth_failures (key, score, window_start, strikes, updated_at) VALUES ('ip:192.0.2.99', 3, ?, 1, ?)", [longAgo, longAgo]);
  await db.run("INSERT INTO auth_failures (key, score, window_start, banned_until, strikes, updated_at) VALUES ('ip:192.0.2.98', 3, ?, ?, 1, ?)", [longAgo, Date.now() + 3_600_000, longAgo]);
  await db.run("INSERT INTO retention_runs (started_at, finished_at, status) VALUES (?, ?, 'ok')", [longAgo, longAgo]);
  await collected.until((all) => sum(all, 'tombstonesPruned') >= 1 && sum(all, 'accessLogPruned') >= 1 && sum(all, 'lockoutPruned') >= 1 && sum(all, 'runsPruned') >= 1);
  t.is((await tg.api(s.token, 'GET', `/api/v1/events/${E}`)).status, 404, 'the tombstone is gone after the audit period');
  t.is((await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM access_log WHERE event_id IN (?, ?)', [E, 'someevent']))?.n, 0);
  const keys = (await db.query<{ key: string }>("SELECT key FROM auth_failures WHERE key LIKE 'ip:192.0.2.9%'")).map((r) => r.key);
  t.deepEqual(keys, ['ip:192.0.2.98'], 'a key still banned is kept');
  t.is((await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM retention_runs WHERE started_at = ?', [longAgo]))?.n, 0);
});

test.serial('a run that overlaps the previous one is skipped and recorded', async (t) => {
  const job = tg.gateway.retention;
  const first = job.run();
  const second = await job.run();
  t.true(second.skipped);
  await first;
  const row = await tg.gateway.db.get<{ status: string }>('SELECT status FROM retention_runs WHERE id = ?', [second.id]);
  t.is(row?.status, 'skipped');
});
