import test from 'ava';
import { basic, startTestGateway, type TestGateway } from '../helpers/gateway.js';

let gw: TestGateway;
test.before(async () => {
  gw = await startTestGateway();
});
test.after.always(async () => {
  await gw?.stop();
});

test('32 concurrent requests with one fresh credential cost one argon2 verification', async (t) => {
  const sender = await gw.sender();
  const ev = await gw.api(sender.token, 'POST', '/api/v1/events', { files: [], recipients: [{ name: 'load' }] });
  t.is(ev.status, 201);
  const r = ev.body.recipients[0];
  const before = gw.gateway.hasher.verifications;
  const answers = await Promise.all(
    Array.from({ length: 32 }, () => fetch(`${gw.url}/e/${ev.body.id}/`, { headers: { authorization: basic(r.username, r.password) } }).then((res) => res.status)),
  );
  t.deepEqual([...new Set(answers)], [200]);
  t.is(gw.gateway.hasher.verifications - before, 1);
  // A wrong password is still refused (and shares nothing with the good one).
  const wrong = await fetch(`${gw.url}/e/${ev.body.id}/`, { headers: { authorization: basic(r.username, 'wrong-password') } });
  t.is(wrong.status, 401);
});

test('the metrics route is for admins only', async (t) => {
  const admin = await gw.admin();
  const sender = await gw.sender();
  const m = await gw.api(admin.token, 'GET', '/api/v1/metrics');
  t.is(m.status, 200);
  t.is(typeof m.body.argon2Verifications, 'number');
  t.is((await gw.api(sender.token, 'GET', '/api/v1/metrics')).status, 403);
  t.is((await fetch(`${gw.url}/api/v1/metrics`)).status, 401);
});

test('cached reader statements see every later commit (no stale snapshot)', async (t) => {
  const sender = await gw.sender();
  const ev = await gw.api(sender.token, 'POST', '/api/v1/events', { title: 'one', files: [] });
  for (let i = 0; i < 5; i++) {
    const title = `title-${i}`;
    t.is((await gw.api(sender.token, 'PATCH', `/api/v1/events/${ev.body.id}`, { title })).status, 200);
    t.is((await gw.api(sender.token, 'GET', `/api/v1/events/${ev.body.id}`)).body.title, title);
  }
  // Announced paths are found in one lookup: a second announce of the same path is refused.
  t.is((await gw.api(sender.token, 'POST', `/api/v1/events/${ev.body.id}/files`, [{ path: 'a/b.bin', size: 1 }])).status, 201);
  t.is((await gw.api(sender.token, 'POST', `/api/v1/events/${ev.body.id}/files`, [{ path: 'a/b.bin', size: 1 }])).status, 409);
  t.is((await gw.api(sender.token, 'POST', `/api/v1/events/${ev.body.id}/files`, [{ path: 'a', size: 1 }])).status, 409);
});
