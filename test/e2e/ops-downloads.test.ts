import test from 'ava';
import { basic, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { rawRequest, tusCreate } from '../helpers/ops.js';

let tg: TestGateway;
test.before(async () => {
  tg = await startTestGateway();
});
test.after.always(async () => tg?.stop());

test('20 parallel downloads by a recipient with maxDownloads 5 give exactly 5 successes', async (t) => {
  const s = await tg.sender();
  const body = Buffer.alloc(256 * 1024, 7);
  const ev = await tg.api(s.token, 'POST', '/api/v1/events', { files: [{ path: 'f.bin', size: body.length }], recipients: [{ name: 'Max', maxDownloads: 5 }] });
  t.is(ev.status, 201);
  const id = ev.body.id as string;
  const r = ev.body.recipients[0] as { username: string; password: string };
  t.is((await tusCreate(tg.url, id, `Bearer ${s.token}`, 'f.bin', body.length, body)).status, 201);
  const auth = { authorization: basic(r.username, r.password) };
  const results = await Promise.all(Array.from({ length: 20 }, () => rawRequest(`${tg.url}/e/${id}/files/f.bin`, { headers: auth })));
  const ok = results.filter((x) => x.status === 200);
  t.is(ok.length, 5);
  t.true(ok.every((x) => x.body.equals(body)), 'each success carries the whole file');
  t.true(results.filter((x) => x.status !== 200).every((x) => x.status === 403));
  const row = await tg.gateway.db.get<{ downloads: number }>('SELECT downloads FROM recipients WHERE username = ?', [r.username]);
  t.is(row?.downloads, 5);
  // The zip counts as a download too, so it is refused now as well.
  t.is((await rawRequest(`${tg.url}/e/${id}/zip`, { headers: auth })).status, 403);
});
