import test from 'ava';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createHmac, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { basic, startTestGateway, type Account, type TestGateway } from '../helpers/gateway.js';
import { sha256 } from '../helpers/http.js';
import { hasTool, missingToolMessage } from '../helpers/tools.js';
import { createUpload, patch, slowPatch } from '../helpers/tus.js';

const SECRET = 'test-webhook-secret-0123456789';
let g: TestGateway;
let alice: Account;
let receiver: Server;
let receiverUrl: string;
const received: Array<{ headers: IncomingMessage['headers']; body: string }> = [];
let failFirst = true;

test.before(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => {
      // The first delivery fails, so retries are exercised.
      if (failFirst) {
        failFirst = false;
        res.statusCode = 503;
        return res.end();
      }
      received.push({ headers: req.headers, body });
      res.end('ok');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  g = await startTestGateway({ live: { pendingWaitSeconds: 5, stallSeconds: 20 }, notifications: { secret: SECRET } });
  alice = await g.sender('alice');
});
test.after.always(async () => {
  await g?.stop();
  receiver?.close();
});

async function upload(id: string, path: string, data: Buffer) {
  const up = await createUpload(g.url, alice.token, id, path, data.length);
  const res = await patch(up.location!, alice.token, 0, data);
  if (res.status !== 204) throw new Error(`upload ${res.status}`);
}

/** Reads server-sent events from a URL until `stop` says enough. */
async function readEvents(url: string, headers: Record<string, string>, stop: (events: Array<{ type: string; data: any }>) => boolean, onOpen?: () => void) {
  const ctrl = new AbortController();
  const res = await fetch(url, { headers, signal: ctrl.signal });
  if (res.status !== 200) throw new Error(`stream ${res.status}`);
  onOpen?.();
  const events: Array<{ type: string; data: any }> = [];
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const type = /^event: (.+)$/m.exec(block)?.[1];
      const data = /^data: (.+)$/m.exec(block)?.[1];
      if (type && data) events.push({ type, data: JSON.parse(data) });
    }
    if (stop(events)) break;
  }
  ctrl.abort();
  return events;
}

test.serial('the API stream shows progress and completion as they happen', async (t) => {
  const data = randomBytes(8 * 1024 * 1024);
  const ev = (await g.api(alice.token, 'POST', '/api/v1/events', { files: [{ path: 'a.bin', size: data.length }] })).body;
  const up = await createUpload(g.url, alice.token, ev.id, 'a.bin', data.length);
  let uploading: Promise<number> | null = null;
  const events = await readEvents(
    `${g.url}/api/v1/events/${ev.id}/stream`,
    { authorization: `Bearer ${alice.token}` },
    (evs) => evs.some((e) => e.type === 'event.completed'),
    () => (uploading = slowPatch(up.location!, alice.token, 0, data, { piece: 256 * 1024, tickMs: 20 })),
  );
  t.is(await uploading!, 204);
  t.is(events[0].type, 'snapshot');
  t.true(['pending', 'uploading'].includes(events[0].data.files[0].state));
  const progress = events.filter((e) => e.type === 'file.progress').map((e) => e.data.bytes as number);
  t.true(progress.length >= 2, `progress events: ${progress.length}`);
  t.true(progress.every((b, i) => i === 0 || b >= progress[i - 1]));
  t.true(events.some((e) => e.type === 'file.state' && e.data.state === 'complete' && e.data.bytes === data.length));
});

test.serial('long-poll answers on the next change, or after the wait', async (t) => {
  const ev = (await g.api(alice.token, 'POST', '/api/v1/events', { files: [{ path: 'x', size: 3 }] })).body;
  const quiet = await g.api(alice.token, 'GET', `/api/v1/events/${ev.id}/changes?wait=0`);
  t.false(quiet.body.changed);
  const waiting = g.api(alice.token, 'GET', `/api/v1/events/${ev.id}/changes?wait=20`);
  await new Promise((r) => setTimeout(r, 200));
  await upload(ev.id, 'x', Buffer.from('abc'));
  const res = await waiting;
  t.true(res.body.changed);
});

test.serial('zip ?follow=1 streams files as each completes', async (t) => {
  if (!hasTool('unzip')) return t.pass(missingToolMessage('unzip'));
  const one = randomBytes(1024 * 1024);
  const two = randomBytes(2 * 1024 * 1024);
  const ev = (await g.api(alice.token, 'POST', '/api/v1/events', { files: [{ path: 'one.bin', size: one.length }, { path: 'two.bin', size: two.length }], recipients: [{ name: 'Z' }] })).body;
  await upload(ev.id, 'one.bin', one);
  const r = ev.recipients[0];
  const zipping = fetch(`${g.url}/e/${ev.id}/zip?follow=1`, { headers: { authorization: basic(r.username, r.password) } }).then(async (res) => Buffer.from(await res.arrayBuffer()));
  await new Promise((res) => setTimeout(res, 300));
  const up = await createUpload(g.url, alice.token, ev.id, 'two.bin', two.length);
  t.is(await slowPatch(up.location!, alice.token, 0, two, { piece: 128 * 1024, tickMs: 10 }), 204);
  const zip = await zipping;
  const dir = await mkdtemp(join(tmpdir(), 'handoff-zipf-'));
  try {
    await writeFile(join(dir, 'z.zip'), zip);
    execFileSync('unzip', ['-t', join(dir, 'z.zip')]);
    t.is(sha256(execFileSync('unzip', ['-p', join(dir, 'z.zip'), 'two.bin'], { maxBuffer: 8 << 20 })), sha256(two));
    t.is(sha256(execFileSync('unzip', ['-p', join(dir, 'z.zip'), 'one.bin'], { maxBuffer: 8 << 20 })), sha256(one));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.serial('a webhook receiver gets signed file.completed and event.completed calls, with retries', async (t) => {
  const ev = (await g.api(alice.token, 'POST', '/api/v1/events', { files: [{ path: 'w.txt', size: 5 }], webhooks: [receiverUrl], recipients: [{ name: 'W' }] })).body;
  t.deepEqual(ev.webhooks, [receiverUrl]);
  await upload(ev.id, 'w.txt', Buffer.from('hello'));
  const r = ev.recipients[0];
  await (await fetch(`${g.url}/e/${ev.id}/files/w.txt`, { headers: { authorization: basic(r.username, r.password) } })).arrayBuffer();
  const deadline = Date.now() + 20_000;
  const types = () => received.map((x) => JSON.parse(x.body).type as string);
  const undelivered = async () => (await g.gateway.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM webhook_deliveries WHERE delivered_at IS NULL'))?.n ?? 0;
  while (Date.now() < deadline && (!['file.completed', 'event.completed', 'file.downloaded'].every((k) => types().includes(k)) || (await undelivered()) > 0)) {
    await new Promise((res) => setTimeout(res, 200));
  }
  t.true(types().includes('file.completed'), types().join());
  t.true(types().includes('event.completed'));
  t.true(types().includes('file.downloaded'));
  for (const call of received) {
    const sig = String(call.headers['handoff-signature']);
    const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(sig);
    t.truthy(m, sig);
    t.is(m![2], createHmac('sha256', SECRET).update(`${m![1]}.${call.body}`).digest('hex'));
    t.is(JSON.parse(call.body).data.eventId, ev.id);
  }
  const failedOnce = await g.gateway.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM webhook_deliveries WHERE attempts > 1 AND delivered_at IS NOT NULL');
  t.true((failedOnce?.n ?? 0) >= 1, 'the first, failed delivery was retried');
});

test.serial('webhook URLs are validated', async (t) => {
  const bad = await g.api(alice.token, 'POST', '/api/v1/events', { files: [], webhooks: ['file:///etc/passwd'] });
  t.is(bad.status, 400);
});
