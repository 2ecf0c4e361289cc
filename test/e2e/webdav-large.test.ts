import test from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { dav, davEvent, type DavEvent } from '../helpers/dav.js';
import { run } from '../helpers/sftp.js';
import { hasTool, missingToolMessage } from '../helpers/tools.js';

/**
 * A file over 4 GiB (the "large files over 4 GiB") uploaded with curl: sizes, offsets and
 * ranges past 2^32 must survive every layer (Content-Length, positioned writes, the database,
 * PROPFIND, Range). The source is sparse apart from random blocks at the start and at the end, so
 * the test writes 4 GiB through the gateway but stores little of its own.
 */
const FOUR_GIB = 4 * 1024 ** 3;
const SIZE = FOUR_GIB + 8192;

let gw: TestGateway;
let ev: DavEvent;
let work: string;
let src: string;
let head: Buffer;
let tail: Buffer;
let digest: string;

test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'handoff-large-'));
  src = join(work, 'big.bin');
  head = randomBytes(4096);
  tail = randomBytes(8192);
  const fh = await open(src, 'w');
  await fh.write(head, 0, head.length, 0);
  await fh.write(tail, 0, tail.length, FOUR_GIB);
  await fh.close();
  const h = createHash('sha256');
  for await (const chunk of createReadStream(src, { highWaterMark: 4 * 1024 * 1024 })) h.update(chunk as Buffer);
  digest = h.digest('hex');
  gw = await startTestGateway();
  ev = await davEvent(gw, await gw.sender(), ['reader'], [{ path: 'big.bin', size: SIZE, sha256: digest }]);
});

test.after.always(async () => {
  await gw?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

test.serial('a file over 4 GiB: curl PUT, complete with its sha256, exact size in PROPFIND, ranges past 2^32', async (t) => {
  if (!hasTool('curl')) return t.pass(missingToolMessage('curl'));
  const put = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-H', 'Expect:', '-T', src, '-u', `${ev.owner.name}:${ev.owner.password}`, `${ev.url}big.bin`], { timeoutMs: 600_000 });
  t.is(put.code, 0, put.stderr);
  t.true(['201', '204'].includes(put.stdout.trim()), `PUT answered ${put.stdout}`);

  const api = await gw.api(ev.owner.token, 'GET', `/api/v1/events/${ev.id}`);
  const f = api.body.files.find((x: { path: string }) => x.path === 'big.bin');
  t.is(f?.state, 'complete');
  t.is(f?.size, SIZE);
  t.is(f?.sha256, digest);

  const own: [string, string] = [ev.owner.name, ev.owner.password];
  const prop = await dav('PROPFIND', `${ev.url}big.bin`, own, { headers: { depth: '0' } });
  t.is(prop.status, 207);
  t.regex(prop.body, new RegExp(`<D:getcontentlength>${SIZE}</D:getcontentlength>`));

  const rec: [string, string] = [ev.recipients[0].username, ev.recipients[0].password];
  const get = async (range: string) => {
    const auth = 'Basic ' + Buffer.from(`${rec[0]}:${rec[1]}`).toString('base64');
    const res = await fetch(`${ev.url}big.bin`, { headers: { authorization: auth, range } });
    return { status: res.status, range: res.headers.get('content-range'), body: Buffer.from(await res.arrayBuffer()) };
  };
  const last = await get(`bytes=${FOUR_GIB}-${SIZE - 1}`);
  t.is(last.status, 206);
  t.is(last.range, `bytes ${FOUR_GIB}-${SIZE - 1}/${SIZE}`);
  t.true(last.body.equals(tail), 'the last 8 KiB, read at an offset past 2^32');
  const across = await get(`bytes=${FOUR_GIB - 16}-${FOUR_GIB + 15}`);
  t.is(across.status, 206);
  t.true(across.body.equals(Buffer.concat([Buffer.alloc(16), tail.subarray(0, 16)])), 'a range across the 4 GiB boundary');
  const first = await get('bytes=0-4095');
  t.true(first.body.equals(head));
});
