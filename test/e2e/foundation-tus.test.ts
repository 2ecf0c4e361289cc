import test from 'ava';
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import * as tus from 'tus-js-client';
import { basic, startTestGateway, type Account, type TestGateway } from '../helpers/gateway.js';
import { sha256 } from '../helpers/http.js';
import { createUpload, head, interruptedPatch, patch } from '../helpers/tus.js';

let g: TestGateway;
let alice: Account;

test.before(async () => {
  g = await startTestGateway();
  alice = await g.sender('alice');
});
test.after.always(async () => g?.stop());

async function newEvent(files: Array<{ path: string; size: number; sha256?: string }>) {
  const res = await g.api(alice.token, 'POST', '/api/v1/events', { files, recipients: [{ name: 'Bob' }] });
  if (res.status !== 201) throw new Error(JSON.stringify(res.body));
  return res.body as { id: string; recipients: Array<{ username: string; password: string }> };
}

async function fileState(id: string, path: string) {
  const e = await g.api(alice.token, 'GET', `/api/v1/events/${id}`);
  return e.body.files.find((f: { path: string }) => f.path === path);
}

test('an upload cut half-way resumes at the server offset and ends complete with the right bytes', async (t) => {
  const data = randomBytes(8 * 1024 * 1024);
  const ev = await newEvent([{ path: 'big.bin', size: data.length, sha256: sha256(data) }]);
  const up = await createUpload(g.url, alice.token, ev.id, 'big.bin', data.length);
  t.is(up.status, 201);
  await interruptedPatch(up.location!, alice.token, 0, data, data.length / 2);
  const h = await head(up.location!, alice.token);
  t.is(h.status, 200);
  t.true(h.offset! > 0 && h.offset! <= data.length / 2, `offset ${h.offset}`);
  t.is(h.length, data.length);
  // While partial, nobody is offered the file.
  t.is((await fileState(ev.id, 'big.bin')).state, 'uploading');
  const r = ev.recipients[0];
  // A download now follows the upload (live events): never served as a complete file before it is one.
  const early = await fetch(`${g.url}/e/${ev.id}/files/big.bin`, { headers: { authorization: basic(r.username, r.password) } });
  t.is(early.headers.get('x-handoff-state'), 'uploading');
  t.is(early.headers.get('content-length'), String(data.length));
  const listing = await fetch(`${g.url}/e/${ev.id}/`, { headers: { authorization: basic(r.username, r.password) } });
  const html = await listing.text();
  t.true(html.includes('state-uploading'));
  t.false(html.includes('state-complete'), 'never listed as complete before it is');
  // A PATCH at the wrong offset changes nothing.
  t.is((await patch(up.location!, alice.token, 0, data.subarray(0, 10))).status, 409);
  const done = await patch(up.location!, alice.token, h.offset!, data.subarray(h.offset!));
  t.is(done.status, 204);
  t.is(done.offset, data.length);
  const f = await fileState(ev.id, 'big.bin');
  t.is(f.state, 'complete');
  t.is(f.sha256, sha256(data));
  const got = Buffer.from(await (await fetch(`${g.url}/e/${ev.id}/files/big.bin`, { headers: { authorization: basic(r.username, r.password) } })).arrayBuffer());
  t.is(sha256(got), sha256(data));
  t.is(sha256(Buffer.from(await early.arrayBuffer())), sha256(data), 'the follower ends with the whole file');
  // A client that lost the last answer learns the upload is done.
  t.is((await head(up.location!, alice.token)).offset, data.length);
});

test('tus-js-client uploads, aborts and resumes from the server offset', async (t) => {
  const data = randomBytes(6 * 1024 * 1024);
  const ev = await newEvent([{ path: 'dir/js.bin', size: data.length }]);
  const endpoint = `${g.url}/api/v1/events/${ev.id}/uploads/`;
  let uploadUrl: string | null = null;
  await new Promise<void>((resolve, reject) => {
    const upload = new tus.Upload(data, {
      endpoint, chunkSize: 1024 * 1024, metadata: { path: 'dir/js.bin', sha256: sha256(data) },
      headers: { authorization: `Bearer ${alice.token}` }, retryDelays: null,
      onProgress: (sent) => {
        if (sent >= 3 * 1024 * 1024 && !uploadUrl) {
          uploadUrl = upload.url;
          void upload.abort().then(() => resolve());
        }
      },
      onError: reject,
      onSuccess: () => reject(new Error('should have been aborted')),
    });
    upload.start();
  });
  const mid = await head(uploadUrl!, alice.token);
  t.true(mid.offset! >= 2 * 1024 * 1024 && mid.offset! < data.length);
  await new Promise<void>((resolve, reject) => {
    const upload = new tus.Upload(data, {
      endpoint, uploadUrl: uploadUrl!, chunkSize: 1024 * 1024, headers: { authorization: `Bearer ${alice.token}` }, retryDelays: null,
      metadata: { path: 'dir/js.bin' }, onError: reject, onSuccess: () => resolve(),
    });
    upload.start();
  });
  const f = await fileState(ev.id, 'dir/js.bin');
  t.is(f.state, 'complete');
  t.is(f.sha256, sha256(data));
});

test('a wrong sha256 ends failed, and the bytes are never offered', async (t) => {
  const data = randomBytes(100_000);
  const ev = await newEvent([{ path: 'bad.bin', size: data.length, sha256: 'b'.repeat(64) }]);
  const up = await createUpload(g.url, alice.token, ev.id, 'bad.bin', data.length);
  const res = await patch(up.location!, alice.token, 0, data);
  t.is(res.status, 460);
  t.is((await fileState(ev.id, 'bad.bin')).state, 'failed');
  const r = ev.recipients[0];
  const dl = await fetch(`${g.url}/e/${ev.id}/files/bad.bin`, { headers: { authorization: basic(r.username, r.password) } });
  t.is(dl.status, 404);
  const zip = Buffer.from(await (await fetch(`${g.url}/e/${ev.id}/zip`, { headers: { authorization: basic(r.username, r.password) } })).arrayBuffer());
  t.false(zip.includes(Buffer.from('bad.bin')));
  t.deepEqual(await readdir(join(g.gateway.config.storage.root!, ev.id, '.partial')), []);
});

test('a chunk with a wrong Upload-Checksum is discarded and answered 460', async (t) => {
  const data = randomBytes(4096);
  const ev = await newEvent([{ path: 'c.bin', size: data.length }]);
  const up = await createUpload(g.url, alice.token, ev.id, 'c.bin', data.length);
  const bad = await fetch(up.location!, {
    method: 'PATCH',
    headers: { 'Tus-Resumable': '1.0.0', authorization: `Bearer ${alice.token}`, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0', 'Upload-Checksum': `sha256 ${Buffer.alloc(32).toString('base64')}` },
    body: data.subarray(0, 1000),
  });
  t.is(bad.status, 460);
  t.is((await head(up.location!, alice.token)).offset, 0);
  const good = await fetch(up.location!, {
    method: 'PATCH',
    headers: { 'Tus-Resumable': '1.0.0', authorization: `Bearer ${alice.token}`, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0', 'Upload-Checksum': `sha256 ${Buffer.from(sha256(data), 'hex').toString('base64')}` },
    body: data,
  });
  t.is(good.status, 204);
  t.is((await fileState(ev.id, 'c.bin')).state, 'complete');
});

test('an upload over the quota answers 413 and leaves nothing behind', async (t) => {
  const ev = await newEvent([{ path: 'small', size: 10 }]);
  const quota = (await g.api(alice.token, 'GET', `/api/v1/events/${ev.id}`)).body.quotaBytes;
  const up = await createUpload(g.url, alice.token, ev.id, 'extra.bin', quota + 1);
  t.is(up.status, 413);
  t.is(JSON.parse(up.body).error.code, 'quota_exceeded');
  const e = (await g.api(alice.token, 'GET', `/api/v1/events/${ev.id}`)).body;
  t.deepEqual(e.files.map((f: { path: string }) => f.path), ['small']);
  t.deepEqual(await readdir(join(g.gateway.config.storage.root!, ev.id, '.partial')), []);
  t.deepEqual(await g.gateway.db.query('SELECT id FROM uploads WHERE event_id = ?', [ev.id]), []);
  t.is(e.usedBytes, 0);
});

test('an announced file uploaded with another length is refused', async (t) => {
  const ev = await newEvent([{ path: 'f', size: 10 }]);
  const up = await createUpload(g.url, alice.token, ev.id, 'f', 11);
  t.is(up.status, 409);
});

test('tus protocol errors', async (t) => {
  const ev = await newEvent([]);
  const base = `${g.url}/api/v1/events/${ev.id}/uploads/`;
  const opt = await fetch(base, { method: 'OPTIONS' });
  t.is(opt.status, 204);
  t.is(opt.headers.get('tus-version'), '1.0.0');
  t.regex(opt.headers.get('tus-extension')!, /creation/);
  const noVersion = await fetch(base, { method: 'POST', headers: { authorization: `Bearer ${alice.token}`, 'Upload-Length': '1' } });
  t.is(noVersion.status, 412);
  const noPath = await fetch(base, { method: 'POST', headers: { 'Tus-Resumable': '1.0.0', authorization: `Bearer ${alice.token}`, 'Upload-Length': '1' } });
  t.is(noPath.status, 400);
  const traversal = await createUpload(g.url, alice.token, ev.id, '../../etc/x', 1);
  t.is(traversal.status, 400);
  const noAuth = await fetch(base, { method: 'POST', headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': '1' } });
  t.is(noAuth.status, 401);
  const up = await createUpload(g.url, alice.token, ev.id, 'x', 5);
  const wrongType = await fetch(up.location!, { method: 'PATCH', headers: { 'Tus-Resumable': '1.0.0', authorization: `Bearer ${alice.token}`, 'Upload-Offset': '0' }, body: 'abc' });
  t.is(wrongType.status, 415);
  const del = await fetch(up.location!, { method: 'DELETE', headers: { 'Tus-Resumable': '1.0.0', authorization: `Bearer ${alice.token}` } });
  t.is(del.status, 204);
  t.is((await head(up.location!, alice.token)).status, 404);
  t.deepEqual((await g.api(alice.token, 'GET', `/api/v1/events/${ev.id}`)).body.files, []);
});

test('files not in the manifest may be added within quota', async (t) => {
  const ev = await newEvent([{ path: 'a', size: 100 }]);
  const data = randomBytes(50);
  const up = await createUpload(g.url, alice.token, ev.id, 'sub/extra.txt', data.length);
  t.is(up.status, 201);
  t.is((await patch(up.location!, alice.token, 0, data)).status, 204);
  const f = await fileState(ev.id, 'sub/extra.txt');
  t.is(f.state, 'complete');
  t.is(f.size, 50);
});
