import test from 'ava';
import { spawn } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import { once } from 'node:events';
import { basic, startTestGateway, type Account, type TestGateway } from '../helpers/gateway.js';
import { sha256 } from '../helpers/http.js';
import { hasTool, missingToolMessage } from '../helpers/tools.js';
import { createUpload, slowPatch } from '../helpers/tus.js';

let g: TestGateway;
let alice: Account;

test.before(async () => {
  g = await startTestGateway({ live: { pendingWaitSeconds: 2, stallSeconds: 20 } });
  alice = await g.sender('alice');
});
test.after.always(async () => g?.stop());

/** curl as a recipient would run it: exit code, body digest, and bytes seen before `mark()` was called. */
function curlFollow(url: string, user: string, pass: string) {
  const child = spawn('curl', ['-sS', '--fail', '-u', `${user}:${pass}`, '-w', '\n%{time_starttransfer}', url], { stdio: ['ignore', 'pipe', 'pipe'] });
  const hash = createHash('sha256');
  let received = 0;
  let tail = Buffer.alloc(0);
  child.stdout.on('data', (c: Buffer) => {
    // Keep the last 64 bytes apart: curl's -w line follows the body.
    const all = Buffer.concat([tail, c]);
    const cut = Math.max(0, all.length - 64);
    hash.update(all.subarray(0, cut));
    received += cut;
    tail = all.subarray(cut);
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c));
  const done = once(child, 'exit').then(([code]) => {
    const nl = tail.lastIndexOf(0x0a);
    hash.update(tail.subarray(0, nl));
    return { code: code as number, sha256: hash.digest('hex'), bytes: received + nl, firstByte: Number(tail.subarray(nl + 1).toString()), stderr };
  });
  return { received: () => received, done };
}

async function eventWith(path: string, data: Buffer) {
  const ev = (await g.api(alice.token, 'POST', '/api/v1/events', { files: [{ path, size: data.length, sha256: sha256(data) }], recipients: [{ name: 'Bob' }] })).body;
  return ev as { id: string; recipients: Array<{ username: string; password: string }> };
}

test.serial('a recipient following an upload gets the exact bytes, starting before the upload ends', async (t) => {
  if (!hasTool('curl')) return t.pass(missingToolMessage('curl'));
  const data = randomBytes(300 * 1024 * 1024);
  const ev = await eventWith('movie.bin', data);
  const up = await createUpload(g.url, alice.token, ev.id, 'movie.bin', data.length);
  const r = ev.recipients[0];
  let follower: ReturnType<typeof curlFollow> | null = null;
  let receivedBeforeEnd = 0;
  const status = await slowPatch(up.location!, alice.token, 0, data, {
    piece: 1024 * 1024, tickMs: 15,
    onProgress: (sent) => {
      if (!follower && sent >= data.length / 10) follower = curlFollow(`${g.url}/e/${ev.id}/files/movie.bin`, r.username, r.password);
      if (follower && sent >= data.length - 1024 * 1024) receivedBeforeEnd = follower.received();
    },
  });
  t.is(status, 204);
  const result = await follower!.done;
  t.is(result.code, 0, result.stderr);
  t.is(result.bytes, data.length);
  t.is(result.sha256, sha256(data));
  t.true(receivedBeforeEnd > 0, 'bytes arrived while the upload was still running');
  t.log(`first byte after ${result.firstByte.toFixed(3)} s; ${receivedBeforeEnd} bytes received before the upload ended`);
});

test.serial('an upload aborted mid-way makes the follower fail instead of saving a short file', async (t) => {
  if (!hasTool('curl')) return t.pass(missingToolMessage('curl'));
  const data = randomBytes(16 * 1024 * 1024);
  const ev = await eventWith('broken.bin', data);
  const up = await createUpload(g.url, alice.token, ev.id, 'broken.bin', data.length);
  const r = ev.recipients[0];
  let follower: ReturnType<typeof curlFollow> | null = null;
  await slowPatch(up.location!, alice.token, 0, data, {
    piece: 256 * 1024, tickMs: 10, abortAt: data.length / 2,
    onProgress: (sent) => {
      if (!follower && sent >= data.length / 8) follower = curlFollow(`${g.url}/e/${ev.id}/files/broken.bin`, r.username, r.password);
    },
  });
  // The sender gives up: tus termination.
  const del = await fetch(up.location!, { method: 'DELETE', headers: { 'Tus-Resumable': '1.0.0', authorization: `Bearer ${alice.token}` } });
  t.is(del.status, 204);
  const result = await follower!.done;
  t.not(result.code, 0);
  t.true(result.bytes < data.length);
});

test.serial('a pending file is awaited for a bounded time, then answered 425', async (t) => {
  const ev = await eventWith('later.bin', Buffer.from('x'));
  const r = ev.recipients[0];
  const res = await fetch(`${g.url}/e/${ev.id}/files/later.bin`, { headers: { authorization: basic(r.username, r.password) } });
  t.is(res.status, 425);
  const body = (await res.json()) as { error: { code: string; message: string } };
  t.is(body.error.code, 'not_ready');
  t.regex(body.error.message, /pending/);
});
