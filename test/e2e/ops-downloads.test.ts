import test from 'ava';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { setTimeout } from 'node:timers/promises';
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

test('downloads running together never share send buffers, and a slow one keeps its bytes', async (t) => {
  // Send buffers go back to a pool for the next download only once the socket has taken every
  // write from them; a buffer handed out twice, or given back early, would mix these files' bytes.
  const s = await tg.sender();
  const big = 12 * 1024 * 1024 + 4321;
  const small = 3 * 1024 * 1024 + 12345;
  const bodies: Record<string, Buffer> = { 'a.bin': randomBytes(big), 'b.bin': randomBytes(small), 'c.bin': randomBytes(small) };
  const files = Object.entries(bodies).map(([path, body]) => ({ path, size: body.length }));
  const ev = await tg.api(s.token, 'POST', '/api/v1/events', { files, recipients: [{ name: 'Slow' }] });
  t.is(ev.status, 201);
  const id = ev.body.id as string;
  for (const [path, body] of Object.entries(bodies)) t.is((await tusCreate(tg.url, id, `Bearer ${s.token}`, path, body.length, body)).status, 201);
  const r = ev.body.recipients[0] as { username: string; password: string };
  const headers = { authorization: basic(r.username, r.password) };

  const slow = await new Promise<IncomingMessage>((resolve, reject) => httpGet(`${tg.url}/e/${id}/files/a.bin`, { headers }, resolve).on('error', reject));
  t.is(slow.statusCode, 200);
  slow.pause();
  // The gateway fills the socket and waits on it, holding its two buffers, while the others run.
  await setTimeout(300);
  const names = ['b.bin', 'c.bin', 'b.bin', 'c.bin', 'b.bin', 'c.bin'];
  for (let round = 0; round < 2; round++) {
    const others = await Promise.all(names.map((n) => rawRequest(`${tg.url}/e/${id}/files/${n}`, { headers })));
    others.forEach((o, i) => t.true(o.status === 200 && o.body.equals(bodies[names[i]]), `${names[i]} whole and unmixed (round ${round + 1})`));
  }
  const chunks: Buffer[] = [];
  slow.on('data', (c: Buffer) => chunks.push(c));
  slow.resume();
  await once(slow, 'end');
  t.true(Buffer.concat(chunks).equals(bodies['a.bin']), 'the stalled download got a.bin unchanged');
});
