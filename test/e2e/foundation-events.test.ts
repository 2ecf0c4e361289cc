import test from 'ava';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { startTestGateway, type TestGateway, type Account } from '../helpers/gateway.js';

let g: TestGateway;
let alice: Account;

test.before(async () => {
  g = await startTestGateway();
  alice = await g.sender('alice');
});
test.after.always(async () => g?.stop());

const manifest = {
  title: 'Holiday <b>photos</b>',
  files: [
    { path: 'day1/a.jpg', size: 1000 },
    { path: 'day1/b.jpg', size: 2000, sha256: 'a'.repeat(64) },
    { path: 'notes.txt', size: 10 },
  ],
  recipients: [{ name: 'Bob' }, { name: 'Carol', maxDownloads: 3 }],
};

test('creating an event answers with addresses and credentials before any byte exists', async (t) => {
  const res = await g.api(alice.token, 'POST', '/api/v1/events', manifest);
  t.is(res.status, 201);
  const e = res.body;
  t.regex(e.id, /^[0-9a-hjkmnp-tv-z]{26}$/);
  t.is(e.addresses.web, `${g.url}/e/${e.id}/`);
  t.is(e.addresses.webdav, `${g.url}/dav/${e.id}/`);
  t.regex(e.addresses.sftp, new RegExp(`^sftp://127\\.0\\.0\\.1:\\d+/${e.id}/$`));
  t.deepEqual(e.files.map((f: { state: string }) => f.state), ['pending', 'pending', 'pending']);
  t.deepEqual(e.files.map((f: { path: string }) => f.path), ['day1/a.jpg', 'day1/b.jpg', 'notes.txt']);
  t.is(e.recipients.length, 2);
  for (const r of e.recipients) {
    t.true(typeof r.password === 'string' && r.password.length >= 20);
    t.true(r.username.endsWith(`-${e.id.slice(0, 6)}`));
  }
  t.is(e.quotaBytes, 3010 + g.gateway.config.events.quotaSlack);
  // No file content exists yet: the cache folder holds only the (empty) partial-upload area.
  const dir = join(g.gateway.config.storage.root!, e.id);
  t.deepEqual(await readdir(dir), ['.partial']);
  t.deepEqual(await readdir(join(dir, '.partial')), []);
  // Passwords are shown once: a later read does not carry them.
  const again = await g.api(alice.token, 'GET', `/api/v1/events/${e.id}`);
  t.is(again.status, 200);
  t.false('password' in again.body.recipients[0]);
});

test('event ids are unguessable and never repeat', async (t) => {
  const ids = new Set<string>();
  for (let i = 0; i < 20; i++) {
    const res = await g.api(alice.token, 'POST', '/api/v1/events', { files: [] });
    t.is(res.status, 201);
    ids.add(res.body.id);
  }
  t.is(ids.size, 20);
});

test('bad requests answer 400 with a message', async (t) => {
  const cases: Array<[unknown, RegExp]> = [
    ['{not json', /not valid JSON/],
    [{ files: [{ path: 'a', size: -1 }] }, /size/],
    [{ files: [{ path: 'a', size: 1.5 }] }, /size/],
    [{ files: [{ path: 'a', size: 1 }], colour: 'red' }, /unknown field colour/],
    [{ files: [{ path: 'a', size: 1, extra: true }] }, /unknown field files\.0\.extra/],
    [{ files: [{ path: '../x', size: 1 }] }, /\.\./],
    [{ files: [{ path: 'a', size: 1 }, { path: '/a', size: 2 }] }, /twice/],
    [{ files: [{ path: 'a', size: 1 }, { path: 'a/b', size: 2 }] }, /folder/],
    [{ files: [{ path: 'a', size: 1, sha256: 'xyz' }] }, /sha256/],
    [{ files: [], expires: 'tomorrow' }, /expires/],
    [{ files: [], recipients: [{ name: '<script>' }] }, /name/],
    [{ files: [], recipients: [{ name: 'x', sshPublicKey: 'not a key' }] }, /OpenSSH/],
  ];
  for (const [body, message] of cases) {
    const res = await g.api(alice.token, 'POST', '/api/v1/events', body);
    t.is(res.status, 400, JSON.stringify(body));
    t.is(res.body.error.code, 'bad_request');
    t.regex(res.body.error.message, message, JSON.stringify(body));
  }
});

test('an announced manifest larger than the allowed event size answers 413', async (t) => {
  const res = await g.api(alice.token, 'POST', '/api/v1/events', { files: [{ path: 'huge', size: g.gateway.config.events.maxQuotaBytes }] });
  t.is(res.status, 413);
  t.is(res.body.error.code, 'quota_exceeded');
});

test('the API refuses missing and wrong tokens, and recipients', async (t) => {
  t.is((await fetch(`${g.url}/api/v1/events`)).status, 401);
  t.is((await g.api('hnd_wrong', 'GET', '/api/v1/events')).status, 401);
  const created = await g.api(alice.token, 'POST', '/api/v1/events', { files: [], recipients: [{ name: 'r' }] });
  const r = created.body.recipients[0];
  const res = await fetch(`${g.url}/api/v1/events`, { headers: { authorization: 'Basic ' + Buffer.from(`${r.username}:${r.password}`).toString('base64') } });
  t.is(res.status, 403);
});

test('senders see only their own events; admins see all', async (t) => {
  const mallory = await g.sender('mallory');
  const admin = await g.admin('root');
  const mine = await g.api(alice.token, 'POST', '/api/v1/events', { files: [] });
  t.is((await g.api(mallory.token, 'GET', `/api/v1/events/${mine.body.id}`)).status, 404);
  t.is((await g.api(mallory.token, 'DELETE', `/api/v1/events/${mine.body.id}`)).status, 404);
  t.false((await g.api(mallory.token, 'GET', '/api/v1/events')).body.events.some((e: { id: string }) => e.id === mine.body.id));
  t.is((await g.api(admin.token, 'GET', `/api/v1/events/${mine.body.id}`)).status, 200);
});

test('announce more files, patch, close and delete an event', async (t) => {
  const created = await g.api(alice.token, 'POST', '/api/v1/events', { files: [{ path: 'a', size: 1 }] });
  const id = created.body.id;
  const more = await g.api(alice.token, 'POST', `/api/v1/events/${id}/files`, { files: [{ path: 'b/c', size: 5 }] });
  t.is(more.status, 201);
  t.deepEqual(more.body.files.map((f: { path: string }) => f.path), ['a', 'b/c']);
  t.is(more.body.quotaBytes, created.body.quotaBytes + 5);
  const patched = await g.api(alice.token, 'PATCH', `/api/v1/events/${id}`, { title: 'New', expires: '2d', closed: true });
  t.is(patched.status, 200);
  t.is(patched.body.title, 'New');
  t.true(patched.body.closed);
  t.is((await g.api(alice.token, 'POST', `/api/v1/events/${id}/files`, { files: [{ path: 'z', size: 1 }] })).status, 409);
  const removed = await g.api(alice.token, 'DELETE', `/api/v1/events/${id}/files/a`);
  t.is(removed.status, 409, 'a closed event refuses changes');
  t.is((await g.api(alice.token, 'DELETE', `/api/v1/events/${id}`)).status, 204);
  const after = await g.api(alice.token, 'GET', `/api/v1/events/${id}`);
  t.is(after.body.state, 'deleted');
});
