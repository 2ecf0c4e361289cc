import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createEvent, senderBasic } from '../gateway.js';
import type { Metric } from '../lib/bench.js';
import { basicAuth, curl, HttpClient } from '../lib/http.js';
import { mbps } from '../lib/stats.js';
import { one, peerSide, type Ctx } from './context.js';

export const WEBDAV_METRICS: Metric[] = [
  { key: 'webdav-put-1g', unit: 'MB/s', note: 'curl -T, vs Apache mod_dav' },
  { key: 'webdav-get-1g', unit: 'MB/s', note: 'curl, vs Apache mod_dav' },
  { key: 'webdav-put-4k-x2000', unit: 'files/s', note: 'sequential PUTs, keep-alive' },
  { key: 'webdav-put-4k-x2000-durable', unit: 'files/s', note: 'same, vs a bare server that also flushes each file' },
  { key: 'webdav-propfind-5000', unit: 's', note: 'Depth: 1, allprop (lower is better)' },
];

/** PUTs `count` small bodies one after another on one keep-alive connection; returns files/s. */
async function sequentialPuts(http: HttpClient, base: string, auth: string, count: number): Promise<number> {
  const body = randomBytes(4096);
  const col = await http.request(base, { method: 'MKCOL', headers: { authorization: auth } });
  if (col.status !== 201) throw new Error(`MKCOL ${base}: HTTP ${col.status}`);
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) {
    const r = await http.request(`${base}f-${i}.bin`, { method: 'PUT', headers: { authorization: auth, 'content-type': 'application/octet-stream' }, body });
    if (r.status !== 201 && r.status !== 204) throw new Error(`PUT ${base}f-${i}.bin: HTTP ${r.status}`);
  }
  return count / (Number(process.hrtime.bigint() - start) / 1e9);
}

/** Fills a folder through the protocol, a few PUTs at a time (setup, not measured). */
async function populate(http: HttpClient, base: string, auth: string, count: number): Promise<void> {
  const col = await http.request(base, { method: 'MKCOL', headers: { authorization: auth } });
  if (col.status !== 201) throw new Error(`MKCOL ${base}: HTTP ${col.status}`);
  const body = randomBytes(100);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const r = await http.request(`${base}p-${i}.txt`, { method: 'PUT', headers: { authorization: auth }, body });
      if (r.status !== 201 && r.status !== 204) throw new Error(`PUT ${base}p-${i}.txt: HTTP ${r.status}`);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
}

/** Depth:1 PROPFIND without a body (allprop); checks every entry came back; returns seconds. */
async function propfind(http: HttpClient, url: string, auth: string, expected: number): Promise<number> {
  const r = await http.request(url, { method: 'PROPFIND', headers: { authorization: auth, depth: '1' } });
  if (r.status !== 207) throw new Error(`PROPFIND ${url}: HTTP ${r.status}`);
  const entries = (r.body.toString().match(/<(?:[A-Za-z0-9]+:)?response[\s>]/g) ?? []).length;
  if (entries < expected) throw new Error(`PROPFIND ${url}: ${entries} entries, expected ${expected}`);
  return r.ms / 1000;
}

export async function webdavScenarios(ctx: Ctx): Promise<void> {
  const { g, sizes, bench, log } = ctx;
  const to = sizes.timeoutMs;
  const names = Array.from({ length: sizes.runs }, (_, i) => `dav-${i + 1}.bin`);
  const ev = await createEvent(g, 'bench-webdav', names.map((path) => ({ path, size: sizes.big })));
  const auth = senderBasic(g);
  const dav = `${g.url}/dav/${ev.id}/`;
  const probe = await g.http.request(dav, { method: 'PROPFIND', headers: { authorization: auth, depth: '0' } });
  if (probe.status !== 207) {
    const reason = probe.status === 404 || probe.status === 405 || probe.status === 501 ? 'gateway has no WebDAV yet' : `PROPFIND /dav/EVENT/ answered ${probe.status}`;
    bench.skip(WEBDAV_METRICS, reason, 'apache');
    return;
  }
  const [putM, getM, smallM, floorM, propM] = WEBDAV_METRICS;
  const gwAuth = ['-u', `${g.sender.name}:${g.sender.password}`];
  const peerAuth = ['-u', `${ctx.peerUser.name}:${ctx.peerUser.password}`];
  const peerBasic = basicAuth(ctx.peerUser.name, ctx.peerUser.password);
  const put = (url: string, a: string[]) => one(async () => mbps(sizes.big, (await curl(['-T', ctx.big, '-H', 'Expect:', ...a, url], to)).seconds));
  const get = (url: string, a: string[]) => one(async () => {
    const r = await curl([...a, url], to);
    if (r.bytes !== sizes.big) throw new Error(`GET ${url}: ${r.bytes} bytes`);
    return mbps(r.bytes, r.seconds);
  });

  log('WebDAV PUT / GET');
  let gi = 0;
  let pi = 0;
  await bench.compare(
    [putM],
    async () => put(`${dav}${names[gi++]}`, gwAuth)(),
    peerSide(ctx.apache, 'apache', (a) => async () => put(`${a.url}/dav/dav-${++pi}.bin`, peerAuth)()),
  );
  await bench.compare([getM], get(`${dav}${names[0]}`, gwAuth), peerSide(ctx.apache, 'apache', (a) => get(`${a.url}/dav/dav-1.bin`, peerAuth)));

  log('WebDAV small PUTs');
  // One unmeasured round per side first: the gateway's first 2,000 PUTs run while V8 is still
  // optimising the request path (that run came out 1.5-2x slower than the two after it), and a
  // server that has been up for a while is what users meet.
  await sequentialPuts(g.http, `${dav}warmup/`, auth, sizes.davSmallPuts);
  if (ctx.apache.ok) await sequentialPuts(g.http, `${ctx.apache.value.url}/dav/warmup/`, peerBasic, sizes.davSmallPuts);
  let gs = 0;
  let ps = 0;
  await bench.compare(
    [smallM],
    one(() => sequentialPuts(g.http, `${dav}small-${++gs}/`, auth, sizes.davSmallPuts)),
    peerSide(ctx.apache, 'apache', (a) => one(() => sequentialPuts(g.http, `${a.url}/dav/small-${++ps}/`, peerBasic, sizes.davSmallPuts))),
  );
  // Apache answers before its bytes are durable; the gateway after. This row measures the same PUTs
  // against a bare server that flushes like the gateway does, to show what of the gap is the flush.
  let fr = 0;
  await bench.compare(
    [floorM],
    one(() => sequentialPuts(g.http, `${dav}small-${++gs}/`, auth, sizes.davSmallPuts)),
    peerSide(ctx.durableFloor, 'durable-floor', (f) => one(() => sequentialPuts(g.http, `${f.url}/small-${++fr}/`, peerBasic, sizes.davSmallPuts))),
  );

  log('WebDAV PROPFIND');
  await populate(g.http, `${dav}many/`, auth, sizes.propfindFiles);
  if (ctx.apache.ok) {
    // The peer's folder is filled on disk directly: only the listing is measured.
    const many = join(ctx.apache.value.root, 'many');
    await mkdir(many);
    const body = randomBytes(100);
    for (let i = 0; i < sizes.propfindFiles; i++) await writeFile(join(many, `p-${i}.txt`), body);
  }
  await bench.compare(
    [propM],
    one(() => propfind(g.http, `${dav}many/`, auth, sizes.propfindFiles + 1)),
    peerSide(ctx.apache, 'apache', (a) => one(() => propfind(g.http, `${a.url}/dav/many/`, peerBasic, sizes.propfindFiles + 1))),
  );
}
