import test from 'ava';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { basic, startTestGateway, type Account, type TestGateway } from '../helpers/gateway.js';
import { rawRequest } from '../helpers/http.js';
import { createUpload } from '../helpers/tus.js';

let g: TestGateway;
let alice: Account;
let ev: { id: string; recipients: Array<{ username: string; password: string }> };
let sibling: { id: string };
const CANARY = 'CANARY-7f3a9c-must-never-be-served';

/** P1–P4 of the research corpus: raw, encoded once and twice. */
const corpus = [
  '..', '../', '..\\', '..%2f', '%2e%2e/', '%2e%2e%2f', '.%2e/', '%2e./', '..%252f', '..%5c', '..%255c', '..;/', './../', '.../', '..../',
  '//', '///x', '\\\\x', '/abs', 'C:\\x', 'C:x', '\\\\?\\C:\\x', '\\\\.\\x', '%c0%ae%c0%ae/', '%e0%80%ae', '%ef%bc%8e%ef%bc%8e%ef%bc%8f',
  '..%e2%88%95', '%e2%80%a4%e2%80%a4/', '%e2%80%a5/', '%00', 'x%00.txt', '%0d%0a', '%252e%252e%252f',
];

test.before(async () => {
  g = await startTestGateway();
  alice = await g.sender('alice');
  ev = (await g.api(alice.token, 'POST', '/api/v1/events', { files: [{ path: 'ok.txt', size: 2 }], recipients: [{ name: 'R' }] })).body;
  sibling = (await g.api(alice.token, 'POST', '/api/v1/events', { files: [] })).body;
  // Canaries beside the storage root, in the data dir, and inside a sibling event's cache folder.
  const root = g.gateway.config.storage.root!;
  for (const p of [join(dirname(root), 'canary.txt'), join(root, 'canary.txt'), join(root, sibling.id, 'canary.txt'), '/tmp/canary.txt']) {
    await mkdir(dirname(p), { recursive: true });
    await writeFile(p, CANARY);
  }
});
test.after.always(async () => g?.stop());

test('download routes never serve anything outside the event', async (t) => {
  const r = ev.recipients[0];
  const auth = { authorization: basic(r.username, r.password) };
  const targets = ['canary.txt', `${sibling.id}/canary.txt`, 'etc/passwd', 'tmp/canary.txt'];
  let requests = 0;
  for (const trick of corpus) {
    for (const target of targets) {
      for (const depth of [1, 3, 6]) {
        const path = `/e/${ev.id}/files/${trick.repeat(depth)}${target}`;
        const res = await rawRequest(g.url, 'GET', path, auth);
        requests++;
        t.true([400, 404, 301, 308].includes(res.status) || (res.status === 200 && !res.body.includes(CANARY)), `${path} → ${res.status}`);
        t.false(res.body.includes(CANARY), path);
        t.false(res.body.includes('root:x:0:0'), path);
      }
    }
  }
  t.true(requests > 300);
  // The server is still up.
  t.is((await fetch(`${g.url}/healthz`)).status, 200);
});

test('a sibling event whose id shares a prefix stays out of reach', async (t) => {
  const r = ev.recipients[0];
  const prefix = ev.id.slice(0, 20);
  for (const path of [`/e/${prefix}/`, `/e/${ev.id}x/`, `/e/${ev.id}/../${sibling.id}/`, `/e/${sibling.id}/`, `/e/${sibling.id}/files/canary.txt`]) {
    const res = await rawRequest(g.url, 'GET', path, { authorization: basic(r.username, r.password) });
    t.true([401, 403, 404, 301].includes(res.status), `${path} → ${res.status}`);
    t.false(res.body.includes(CANARY));
  }
});

test('upload paths in tus metadata and manifests are refused, and nothing is written outside', async (t) => {
  const before = await readdir(g.gateway.config.storage.root!);
  const bad = ['../x', '../../canary.txt', 'a/../../x', '/../x', 'a\\..\\x', 'x\u0000y', '\uff0e\uff0e/x', 'a/\u2025/b', '..', 'ok/..'];
  for (const p of bad) {
    const up = await createUpload(g.url, alice.token, ev.id, p, 1);
    t.is(up.status, 400, p);
    const m = await g.api(alice.token, 'POST', `/api/v1/events/${ev.id}/files`, { files: [{ path: p, size: 1 }] });
    t.is(m.status, 400, p);
  }
  t.deepEqual(await readdir(g.gateway.config.storage.root!), before);
  const files = (await g.api(alice.token, 'GET', `/api/v1/events/${ev.id}`)).body.files;
  t.deepEqual(files.map((f: { path: string }) => f.path), ['ok.txt']);
});

test('API file routes are confined too', async (t) => {
  for (const trick of ['..%2f..%2fcanary.txt', '%2e%2e/%2e%2e/canary.txt', '..\\..\\canary.txt']) {
    const res = await rawRequest(g.url, 'DELETE', `/api/v1/events/${ev.id}/files/${trick}`, { authorization: `Bearer ${alice.token}` });
    t.true([400, 404].includes(res.status), `${trick} → ${res.status}`);
  }
  t.is((await g.api(alice.token, 'GET', `/api/v1/events/${ev.id}`)).body.files.length, 1);
});
