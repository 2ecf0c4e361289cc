import test from 'ava';
import { request } from 'node:http';
import { AdminClient } from '../helpers/adminHttp.js';
import { basic, startTestGateway, type Account, type TestGateway } from '../helpers/gateway.js';

let gw: TestGateway;
let root: Account;
let alice: Account;
let c: AdminClient;

test.before(async () => {
  gw = await startTestGateway();
  root = await gw.admin('root');
  alice = await gw.sender('alice');
  c = new AdminClient(gw.url);
  await c.login(root.name, root.password);
});
test.after.always(() => gw?.stop());

const input = (html: string, id: string) => new RegExp(`id="${id}" value="([^"]+)"`).exec(html)?.[1];
const rows = (html: string) => html.match(/<td data-label="When">/g) ?? [];
const flashOf = (html: string) => /class="flash flash-(ok|error)"[^>]*>([^<]*)</.exec(html)?.slice(1, 3);

async function upload(token: string, id: string, path: string, body: string): Promise<void> {
  const res = await fetch(`${gw.url}/api/v1/events/${id}/uploads/`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`, 'tus-resumable': '1.0.0', 'upload-length': String(Buffer.byteLength(body)),
      'upload-metadata': `path ${Buffer.from(path).toString('base64')}`, 'content-type': 'application/offset+octet-stream',
    },
    body,
  });
  if (res.status !== 201) throw new Error(`upload ${res.status}`);
}

test.serial('recipients: SSH key, expiry and download limit; password reset kills the old one; bad names refused', async (t) => {
  const ev = await gw.api(alice.token, 'POST', '/api/v1/events', { files: [{ path: 'f.txt', size: 2 }] });
  const id: string = ev.body.id;
  await upload(alice.token, id, 'f.txt', 'hi');
  await c.get(`/admin/events/${id}`);
  const key = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGn9tP2m7cl7fTQK9M0wz8m8HkG3ZtAR7y2GDpE1Zb5T dana@laptop';
  const added = await c.post(`/admin/events/${id}/recipients`, { name: 'Dana', sshPublicKey: key, maxDownloads: '5', expires: '2d' });
  t.is(added.status, 201);
  const username = input(added.text, 'issued-username')!;
  const first = input(added.text, 'issued-password')!;
  t.truthy(username && first);
  const view = await gw.api(alice.token, 'GET', `/api/v1/events/${id}`);
  t.like(view.body.recipients[0], { name: 'Dana', maxDownloads: 5 });
  t.truthy(view.body.recipients[0].expiresAt);
  const file = `${gw.url}/e/${id}/files/f.txt`;
  t.is((await fetch(file, { headers: { authorization: basic(username, first) } })).status, 200);

  const reset = await c.post(`/admin/events/${id}/recipients/reset`, { name: 'Dana' });
  t.is(reset.status, 201);
  const second = input(reset.text, 'issued-password')!;
  t.not(second, first);
  t.is((await fetch(file, { headers: { authorization: basic(username, first) } })).status, 401, 'the old password is dead at once');
  t.is((await fetch(file, { headers: { authorization: basic(username, second) } })).status, 200);
  const page = await c.get(`/admin/events/${id}`);
  t.regex(page.text, /<td data-label="Downloads" class="num">2 \/ 5<\/td>/);

  const bad = await c.post(`/admin/events/${id}/recipients`, { name: '<b>bad</b>' });
  t.is(bad.status, 303);
  t.is(flashOf((await c.get(`/admin/events/${id}`)).text)?.[0], 'error');
});

test.serial('event actions: extend, close, reopen, remove a file, delete', async (t) => {
  const ev = await gw.api(alice.token, 'POST', '/api/v1/events', { expires: '1d', files: [{ path: 'a.txt', size: 1 }, { path: 'b.txt', size: 1 }] });
  const id: string = ev.body.id;
  await upload(alice.token, id, 'a.txt', 'a');
  await c.get(`/admin/events/${id}`);
  t.is((await c.post(`/admin/events/${id}/extend`, { expires: '30d' })).status, 303);
  const after = await gw.api(alice.token, 'GET', `/api/v1/events/${id}`);
  t.true(Date.parse(after.body.expiresAt) > Date.now() + 29 * 86_400_000);
  t.is((await c.post(`/admin/events/${id}/close`, {})).status, 303);
  t.true((await gw.api(alice.token, 'GET', `/api/v1/events/${id}`)).body.closed);
  t.regex((await c.get(`/admin/events/${id}`)).text, /Reopen for uploads/);
  await c.post(`/admin/events/${id}/reopen`, {});
  t.false((await gw.api(alice.token, 'GET', `/api/v1/events/${id}`)).body.closed);

  await c.post(`/admin/events/${id}/files/remove`, { path: 'a.txt' });
  const files = (await gw.api(alice.token, 'GET', `/api/v1/events/${id}`)).body.files;
  t.falsy(files.find((f: { path: string }) => f.path === 'a.txt'), 'a removed file leaves the manifest');
  t.truthy(files.find((f: { path: string }) => f.path === 'b.txt'));

  await c.post(`/admin/events/${id}/delete`, {});
  t.is((await gw.api(alice.token, 'GET', `/api/v1/events/${id}`)).body.state, 'open', 'no delete without the confirmation box');
  await c.post(`/admin/events/${id}/delete`, { confirm: 'yes' });
  t.is((await gw.api(alice.token, 'GET', `/api/v1/events/${id}`)).body.state, 'deleted');
  t.is((await fetch(`${gw.url}/e/${id}/`, { headers: { authorization: basic(alice.name, alice.password) } })).status, 410);
});

test.serial('access log filters and pagination', async (t) => {
  const ev = await gw.api(alice.token, 'POST', '/api/v1/events', { files: [{ path: 'dir/x.txt', size: 1 }, { path: 'y%_.txt', size: 1 }] });
  const id: string = ev.body.id;
  await upload(alice.token, id, 'dir/x.txt', 'x');
  await upload(alice.token, id, 'y%_.txt', 'y');
  for (let i = 0; i < 60; i++) await fetch(`${gw.url}/e/${id}/files/dir/x.txt`, { headers: { authorization: basic(alice.name, alice.password) } }).then((r) => r.arrayBuffer());
  const all = await c.get(`/admin/events/${id}/log`);
  t.is(rows(all.text).length, 50, 'first page holds 50 entries');
  t.regex(all.text, /Page 1 of 2/);
  const p2 = await c.get(`/admin/events/${id}/log?page=2`);
  t.is(rows(p2.text).length, 13); // 60 downloads + 2 uploads + event.create
  const uploads = await c.get(`/admin/events/${id}/log?action=upload`);
  t.is(rows(uploads.text).length, 2);
  const literal = await c.get(`/admin/events/${id}/log?path=${encodeURIComponent('%_')}`);
  t.is(rows(literal.text).length, 1, '% and _ match literally');
  const none = await c.get(`/admin/events/${id}/log?who=nobody`);
  t.regex(none.text, /No entries match these filters/);
  const future = await c.get(`/admin/events/${id}/log?since=2999-01-01`);
  t.regex(future.text, /No entries match/);
  const badDate = await c.get(`/admin/events/${id}/log?since=yesterday`);
  t.is(badDate.status, 400);
});

test.serial('accounts: create with a password, reset, disable/enable, tokens, limits honoured by the API', async (t) => {
  await c.get('/admin/users');
  t.is((await c.post('/admin/users', { name: 'bob', role: 'sender', password: 'correct horse battery' })).status, 303);
  const short = await c.post('/admin/users', { name: 'eve', role: 'sender', password: 'short' });
  t.is(short.status, 303);
  t.regex((await c.get('/admin/users')).text, /at least 12 characters/);

  await c.get('/admin/users/bob');
  const token = input((await c.post('/admin/users/bob/tokens', {})).text, 'issued-secret')!;
  t.is((await gw.api(token, 'GET', '/api/v1/events')).status, 200);
  const detail = await c.get('/admin/users/bob');
  const tokenId = /name="token" value="(\d+)"/.exec(detail.text)![1];
  await c.post('/admin/users/bob/tokens/revoke', { token: tokenId });
  t.is((await gw.api(token, 'GET', '/api/v1/events')).status, 401, 'revoked token refused');

  const pw = input((await c.post('/admin/users/bob/password', {})).text, 'issued-secret')!;
  const login = new AdminClient(gw.url);
  t.is((await login.login('bob', 'correct horse battery')).status, 401);
  t.is((await login.login('bob', pw)).status, 403, 'new password works (but bob is no admin)');

  const token2 = await gw.gateway.accounts.createToken('bob');
  t.is((await c.post('/admin/users/bob/limits', { quota: '100 MiB', maxTtl: '2d' })).status, 303);
  const limited = (await c.get('/admin/users/bob')).text;
  t.regex(limited, /name="quota"[^>]*value="104857600"/);
  t.regex(limited, /name="maxTtl"[^>]*value="2d"/);
  t.is((await gw.api(token2, 'POST', '/api/v1/events', { files: [{ path: 'big', size: 200 * 2 ** 20 }] })).status, 413, 'quota cap applies');
  const capped = await gw.api(token2, 'POST', '/api/v1/events', { expires: '30d', files: [] });
  t.is(capped.status, 201);
  t.true(Date.parse(capped.body.expiresAt) <= Date.now() + 2 * 86_400_000 + 1000, 'lifetime cap applies');
  t.regex((await c.get('/admin/users')).text, /100\.0 MiB/);
  await c.post('/admin/users/bob/limits', { quota: 'lots', maxTtl: '' });
  t.regex((await c.get('/admin/users/bob')).text, /Sizes look like/);

  await c.post('/admin/users/bob/disable', {});
  t.is((await gw.api(token2, 'GET', '/api/v1/events')).status, 401);
  await c.post('/admin/users/bob/enable', {});
  t.is((await gw.api(token2, 'GET', '/api/v1/events')).status, 200);

  await c.post('/admin/users', { name: 'temp', role: 'admin' });
  await c.post('/admin/users/temp/remove', {});
  t.is((await c.get('/admin/users/temp')).status, 404);
});

test.serial('dashboard pagination and empty states; lockout list clears', async (t) => {
  for (let i = 0; i < 26; i++) await gw.api(alice.token, 'POST', '/api/v1/events', { title: `bulk ${i}`, files: [] });
  const first = await c.get('/admin/');
  t.is((first.text.match(/<a href="\/admin\/events\//g) ?? []).length, 25);
  t.regex(first.text, /Page 1 of 2/);
  const second = await c.get('/admin/?page=2');
  t.regex(second.text, /Page 2 of 2/);
  t.regex((await c.get('/admin/lockouts')).text, /No failed logins are being counted|Clear all/);
  const attacker = new AdminClient(gw.url, '127.0.0.3');
  await attacker.login('nobody', 'wrong password 123');
  const list = await c.get('/admin/lockouts');
  t.regex(list.text, /user:nobody/);
  t.regex(list.text, /ip:127\.0\.0\.3/);
  await c.post('/admin/lockouts/clear', { key: 'user:nobody' });
  const after = await c.get('/admin/lockouts');
  t.notRegex(after.text, /<code>user:nobody<\/code>/);
  t.regex(after.text, /ip:127\.0\.0\.3/);
  await c.post('/admin/lockouts/clear', {});
  t.regex((await c.get('/admin/lockouts')).text, /No failed logins are being counted/);
});

test.serial('the live stream forwards file states and ends when the panel closes', async (t) => {
  const ev = await gw.api(alice.token, 'POST', '/api/v1/events', { files: [{ path: 'live.txt', size: 4 }] });
  const id: string = ev.body.id;
  const received: string[] = [];
  const ended = new Promise<void>((resolve, reject) => {
    const req = request(`${gw.url}/admin/events/${id}/live`, { headers: { cookie: `handoff-admin=${c.cookie}` } }, (res) => {
      t.is(res.statusCode, 200);
      t.regex(String(res.headers['content-type']), /^text\/event-stream/);
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        received.push(chunk);
        if (chunk.startsWith('retry:')) void upload(alice.token, id, 'live.txt', 'live');
      });
      res.on('end', () => resolve());
    });
    req.on('error', reject);
    req.end();
  });
  while (!received.join('').includes('"state":"complete"')) await new Promise((r) => setTimeout(r, 20));
  const data = received.join('').split('\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6)));
  t.like(data.at(-1), { path: 'live.txt', state: 'complete', bytes: 4, size: 4, label: '4 B' });
  gw.gateway.adminPanel!.close();
  await ended;
  t.pass();
});
