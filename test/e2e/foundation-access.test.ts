import test from 'ava';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { basic, startTestGateway, type Account, type TestGateway } from '../helpers/gateway.js';
import { sha256 } from '../helpers/http.js';
import { createUpload, patch } from '../helpers/tus.js';
import { hasTool, missingToolMessage } from '../helpers/tools.js';

let g: TestGateway;
let alice: Account;
type Recipient = { name: string; username: string; password: string };
let evA: { id: string; recipients: Recipient[] };
let evB: { id: string; recipients: Recipient[] };
const files: Record<string, Buffer> = {
  'report.pdf': randomBytes(300_000),
  'photos/b.jpg': randomBytes(50_000),
  'photos/<img src=x onerror=alert(1)>.txt': Buffer.from('hello'),
  '._report.pdf': Buffer.from('apple double'),
};

async function upload(ev: { id: string }, path: string, data: Buffer) {
  const up = await createUpload(g.url, alice.token, ev.id, path, data.length, sha256(data));
  const res = await patch(up.location!, alice.token, 0, data);
  if (res.status !== 204) throw new Error(`upload ${path}: ${res.status} ${res.body}`);
}

const get = (path: string, r: { username: string; password: string } | null, headers: Record<string, string> = {}) =>
  fetch(g.url + path, { headers: { ...(r ? { authorization: basic(r.username, r.password) } : {}), ...headers } });

test.before(async () => {
  g = await startTestGateway();
  alice = await g.sender('alice');
  const manifest = Object.entries(files).map(([path, d]) => ({ path, size: d.length }));
  evA = (await g.api(alice.token, 'POST', '/api/v1/events', { title: 'A', files: manifest, recipients: [{ name: 'Ann' }, { name: 'Rita' }] })).body;
  evB = (await g.api(alice.token, 'POST', '/api/v1/events', { title: 'B', files: [{ path: 'x', size: 1 }], recipients: [{ name: 'Bea' }] })).body;
  for (const [p, d] of Object.entries(files)) await upload(evA, p, d);
});
test.after.always(async () => g?.stop());

test('a recipient downloads a whole file and a range, with safe headers', async (t) => {
  const ann = evA.recipients[0];
  const res = await get(`/e/${evA.id}/files/report.pdf`, ann);
  t.is(res.status, 200);
  t.is(sha256(Buffer.from(await res.arrayBuffer())), sha256(files['report.pdf']));
  t.regex(res.headers.get('content-disposition')!, /^attachment; filename="report.pdf"/);
  t.is(res.headers.get('x-content-type-options'), 'nosniff');
  t.is(res.headers.get('content-type'), 'application/octet-stream');
  t.regex(res.headers.get('content-security-policy')!, /sandbox/);
  t.is(res.headers.get('accept-ranges'), 'bytes');
  const part = await get(`/e/${evA.id}/files/report.pdf`, ann, { range: 'bytes=1000-1999' });
  t.is(part.status, 206);
  t.is(part.headers.get('content-range'), `bytes 1000-1999/${files['report.pdf'].length}`);
  t.deepEqual(Buffer.from(await part.arrayBuffer()), files['report.pdf'].subarray(1000, 2000));
  const bad = await get(`/e/${evA.id}/files/report.pdf`, ann, { range: 'bytes=999999999-' });
  t.is(bad.status, 416);
  const nested = await get(`/e/${evA.id}/files/photos/b.jpg`, ann);
  t.is(sha256(Buffer.from(await nested.arrayBuffer())), sha256(files['photos/b.jpg']));
});

test('the listing escapes names and hides macOS clutter from recipients', async (t) => {
  const res = await get(`/e/${evA.id}/`, evA.recipients[0]);
  t.is(res.status, 200);
  const html = await res.text();
  t.false(html.includes('<img src=x'));
  t.true(html.includes('&lt;img src=x onerror=alert(1)&gt;.txt'));
  t.false(html.includes('._report.pdf'));
  t.regex(res.headers.get('content-security-policy')!, /script-src 'self'/);
  t.is((await get(`/e/${evA.id}/files/._report.pdf`, evA.recipients[0])).status, 404);
  // Without a trailing slash the page redirects so its relative links work.
  const r = await fetch(`${g.url}/e/${evA.id}`, { redirect: 'manual', headers: { authorization: basic(evA.recipients[0].username, evA.recipients[0].password) } });
  t.is(r.status, 301);
});

test('download all streams every complete file as one zip', async (t) => {
  const res = await get(`/e/${evA.id}/zip`, evA.recipients[0]);
  t.is(res.status, 200);
  t.is(res.headers.get('content-type'), 'application/zip');
  const zip = Buffer.from(await res.arrayBuffer());
  if (!hasTool('unzip')) return t.log(missingToolMessage('unzip'));
  const dir = await mkdtemp(join(tmpdir(), 'handoff-zip-'));
  try {
    await writeFile(join(dir, 'all.zip'), zip);
    const listing = execFileSync('unzip', ['-Z1', join(dir, 'all.zip')]).toString().trim().split('\n').sort();
    t.deepEqual(listing, ['photos/<img src=x onerror=alert(1)>.txt', 'photos/b.jpg', 'report.pdf']);
    const content = execFileSync('unzip', ['-p', join(dir, 'all.zip'), 'report.pdf'], { maxBuffer: 10 * 1024 * 1024 });
    t.is(sha256(content), sha256(files['report.pdf']));
    execFileSync('unzip', ['-t', join(dir, 'all.zip')]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('another event\'s recipient, wrong passwords and anonymous users never get data', async (t) => {
  const bea = evB.recipients[0];
  for (const path of [`/e/${evA.id}/`, `/e/${evA.id}/files/report.pdf`, `/e/${evA.id}/zip`]) {
    const other = await get(path, bea);
    t.true([401, 403, 404].includes(other.status), `${path}: ${other.status}`);
    t.false(Buffer.from(await other.arrayBuffer()).includes(files['report.pdf'].subarray(0, 64)));
    const anon = await get(path, null);
    t.is(anon.status, 401);
    t.regex(anon.headers.get('www-authenticate')!, /^Basic realm="Handoff"/);
    t.is((await get(path, { username: evA.recipients[0].username, password: 'wrong' })).status, 401);
  }
});

test('a revoked recipient is refused at once, even with cached credentials', async (t) => {
  const rita = evA.recipients[1];
  t.is((await get(`/e/${evA.id}/files/report.pdf`, rita)).status, 200); // credentials now cached
  t.is((await g.api(alice.token, 'DELETE', `/api/v1/events/${evA.id}/recipients/Rita`)).status, 204);
  const started = Date.now();
  const after = await get(`/e/${evA.id}/files/report.pdf`, rita);
  t.is(after.status, 401);
  t.true(Date.now() - started < 1000);
  t.is((await get(`/e/${evA.id}/`, rita)).status, 401);
  const view = (await g.api(alice.token, 'GET', `/api/v1/events/${evA.id}`)).body;
  t.true(view.recipients.find((r: { name: string }) => r.name === 'Rita').revoked);
});

test('the access log shows who downloaded what', async (t) => {
  const ann = evA.recipients[0];
  await (await get(`/e/${evA.id}/files/photos/b.jpg`, ann)).arrayBuffer();
  const log = await g.api(alice.token, 'GET', `/api/v1/events/${evA.id}/log`);
  t.is(log.status, 200);
  const entries = log.body.entries as Array<{ who: string; action: string; path: string | null; bytes: number; protocol: string; ip: string }>;
  t.true(entries.some((e) => e.who === ann.username && e.action === 'download' && e.path === 'photos/b.jpg' && e.bytes === files['photos/b.jpg'].length && e.protocol === 'http' && e.ip === '127.0.0.1'));
  t.true(entries.some((e) => e.who === 'alice' && e.action === 'upload' && e.path === 'report.pdf'));
  const view = (await g.api(alice.token, 'GET', `/api/v1/events/${evA.id}`)).body;
  t.true(view.recipients.find((r: { name: string }) => r.name === 'Ann').downloads > 0);
});

test('the owner can use the recipient page with the account password', async (t) => {
  const res = await get(`/e/${evA.id}/files/report.pdf`, { username: 'alice', password: alice.password });
  t.is(res.status, 200);
  await res.arrayBuffer();
});

test('an expired event answers 410', async (t) => {
  const ev = (await g.api(alice.token, 'POST', '/api/v1/events', { expires: '1s', files: [], recipients: [{ name: 'Late' }] })).body;
  await new Promise((r) => setTimeout(r, 1200));
  const res = await get(`/e/${ev.id}/`, ev.recipients[0]);
  t.is(res.status, 410);
  t.is(((await res.json()) as { error: { code: string } }).error.code, 'gone');
  t.is((await createUpload(g.url, alice.token, ev.id, 'x', 1)).status, 410);
});

test('a deleted event answers 410 and its storage is gone', async (t) => {
  const ev = (await g.api(alice.token, 'POST', '/api/v1/events', { files: [{ path: 'f', size: 3 }], recipients: [{ name: 'Del' }] })).body;
  await upload(ev, 'f', Buffer.from('abc'));
  t.is((await g.api(alice.token, 'DELETE', `/api/v1/events/${ev.id}`)).status, 204);
  t.is((await get(`/e/${ev.id}/files/f`, ev.recipients[0])).status, 410);
  const log = await g.api(alice.token, 'GET', `/api/v1/events/${ev.id}/log`);
  t.true(log.body.entries.some((e: { action: string }) => e.action === 'event.delete'), 'the audit trail survives');
});
