import { link } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createEvent, type BenchEvent, type BenchGateway } from '../gateway.js';
import { curl, curlParallel } from '../lib/http.js';
import { makeFile } from '../lib/files.js';
import { run } from '../lib/proc.js';
import { mbps, percentile } from '../lib/stats.js';
import { one, peerSide, type Ctx } from './context.js';

const TUS = ['-H', 'Tus-Resumable: 1.0.0'];

/** tus creation (POST) then one PATCH streaming the whole file with curl; returns seconds for both. */
export async function tusUpload(g: BenchGateway, eventId: string, file: string, path: string, size: number, timeoutMs: number): Promise<number> {
  const meta = `path ${Buffer.from(path).toString('base64')}`;
  const created = await g.http.request(`${g.url}/api/v1/events/${eventId}/uploads/`, {
    method: 'POST',
    headers: { authorization: `Bearer ${g.sender.token}`, 'tus-resumable': '1.0.0', 'upload-length': String(size), 'upload-metadata': meta },
  });
  if (created.status !== 201) throw new Error(`tus POST: HTTP ${created.status} ${created.body.toString().slice(0, 200)}`);
  const location = String(created.headers.location);
  const r = await curl(['-X', 'PATCH', '-T', file, '-H', 'Expect:', ...TUS, '-H', 'Upload-Offset: 0', '-H', 'Content-Type: application/offset+octet-stream', '-H', `Authorization: Bearer ${g.sender.token}`, location], timeoutMs);
  return created.ms / 1000 + r.seconds;
}

export async function httpScenarios(ctx: Ctx): Promise<void> {
  const { g, sizes, bench, log } = ctx;
  const to = sizes.timeoutMs;
  const peerAuth = ['-u', `${ctx.peerUser.name}:${ctx.peerUser.password}`];
  const tusNames = Array.from({ length: sizes.runs }, (_, i) => `tus-${i + 1}.bin`);
  const ev = await createEvent(g, 'bench-http', [
    ...tusNames.map((path) => ({ path, size: sizes.big })),
    { path: 'hundred.bin', size: sizes.recipientFile },
    { path: 'small.bin', size: 4096 },
  ], true);
  const recipient = ['-u', `${ev.recipient!.username}:${ev.recipient!.password}`];
  const hundred = await makeFile(join(ctx.dir, 'hundred.bin'), sizes.recipientFile);
  const small = await makeFile(join(ctx.dir, 'small.bin'), 4096);
  await tusUpload(g, ev.id, hundred, 'hundred.bin', sizes.recipientFile, to);
  await tusUpload(g, ev.id, small, 'small.bin', 4096, to);
  if (ctx.nginx.ok) {
    // Hard links: nginx serves the very same bytes without another copy on disk.
    for (const [src, name] of [[ctx.big, 'big.bin'], [hundred, 'hundred.bin'], [small, 'small.bin'], [small, 'auth/small.bin']]) await link(src, join(ctx.nginx.value.root, name));
  }

  log('tus upload');
  let tusRun = 0;
  let putRun = 0;
  await bench.compare(
    [{ key: 'tus-upload-1g', unit: 'MB/s', note: sizes.big === 2 ** 30 ? 'vs Apache PUT' : `${sizes.big / 2 ** 20} MiB, vs Apache PUT` }],
    one(async () => mbps(sizes.big, await tusUpload(g, ev.id, ctx.big, tusNames[tusRun++], sizes.big, to))),
    peerSide(ctx.apache, 'apache', (a) => one(async () => {
      const r = await curl(['-T', ctx.big, '-H', 'Expect:', ...peerAuth, `${a.url}/dav/tus-put-${++putRun}.bin`], to);
      return mbps(sizes.big, r.seconds);
    })),
  );

  log('HTTP download');
  const download = (url: string, auth: string[]) => one(async () => {
    const r = await curl([...auth, url], to);
    if (r.bytes !== sizes.big) throw new Error(`downloaded ${r.bytes} of ${sizes.big} bytes from ${url}`);
    return mbps(r.bytes, r.seconds);
  });
  await bench.compare(
    [{ key: 'http-download-1g', unit: 'MB/s', note: '/e/EVENT/files/… vs nginx' }],
    download(`${g.url}/e/${ev.id}/files/${tusNames[0]}`, recipient),
    peerSide(ctx.nginx, 'nginx', (n) => download(`${n.url}/big.bin`, [])),
  );

  await zipScenario(ctx);
  await authScenario(ctx, ev);

  log(`${sizes.recipients} concurrent recipients`);
  const parallel = (url: string, auth: string[]) => one(async () => {
    const r = await curlParallel(url, sizes.recipients, auth, to);
    return mbps(r.bytes, r.seconds);
  });
  await bench.compare(
    [{ key: 'concurrent-50x100m', unit: 'MB/s', note: `${sizes.recipients} × ${sizes.recipientFile / 2 ** 20} MiB, aggregate` }],
    parallel(`${g.url}/e/${ev.id}/files/hundred.bin`, recipient),
    peerSide(ctx.nginx, 'nginx', (n) => parallel(`${n.url}/hundred.bin`, [])),
  );

  await eventCreationScenario(ctx);
}

async function zipScenario(ctx: Ctx): Promise<void> {
  const { g, sizes, bench, log } = ctx;
  log('zip download');
  const part = await makeFile(join(ctx.dir, 'zip-part.bin'), sizes.zipPart);
  const names = Array.from({ length: sizes.zipParts }, (_, i) => `part-${String(i).padStart(2, '0')}.bin`);
  const ev = await createEvent(g, 'bench-zip', names.map((path) => ({ path, size: sizes.zipPart })), true);
  for (const n of names) await tusUpload(g, ev.id, part, n, sizes.zipPart, sizes.timeoutMs);
  const total = sizes.zipParts * sizes.zipPart;
  await bench.compare(
    [{ key: 'zip-20x50m', unit: 'MB/s', note: `${sizes.zipParts} × ${sizes.zipPart / 2 ** 20} MiB, gateway only` }],
    one(async () => {
      const r = await curl(['-u', `${ev.recipient!.username}:${ev.recipient!.password}`, `${g.url}/e/${ev.id}/zip`], sizes.timeoutMs);
      if (r.bytes < total) throw new Error(`zip of ${r.bytes} bytes, expected over ${total}`);
      return mbps(r.bytes, r.seconds);
    }),
    null,
  );
}

interface Cannon {
  ok: number;
  non2xx: number;
  errors: number;
  p99: number;
  seconds: number;
}

/** autocannon through bench/lib/cannon (which times the last response itself). */
async function autocannon(url: string, authorization: string, ctx: Ctx): Promise<{ rps: number; p99: number }> {
  const script = fileURLToPath(new URL('../lib/cannon.js', import.meta.url));
  const r = await run(process.execPath, [script, url, String(ctx.sizes.authConnections), String(ctx.sizes.authRequests), authorization], { timeoutMs: ctx.sizes.timeoutMs });
  if (r.code !== 0) throw new Error(`autocannon exited ${r.code}: ${r.stderr.slice(-300)}`);
  const res = JSON.parse(r.stdout) as Cannon;
  if (res.non2xx || res.errors || res.ok < ctx.sizes.authRequests) throw new Error(`autocannon: ${res.ok} ok, ${res.non2xx} non-2xx, ${res.errors} errors`);
  return { rps: res.ok / res.seconds, p99: res.p99 };
}

async function authScenario(ctx: Ctx, ev: BenchEvent): Promise<void> {
  const { g, sizes, bench, log } = ctx;
  log('authenticated 4 KiB GETs');
  const basic = (u: string, p: string) => 'Basic ' + Buffer.from(`${u}:${p}`).toString('base64');
  // A recipient no request has used yet: its credential starts outside the verified-credential cache.
  const fresh = await g.api<{ username: string; password: string }>('POST', `/api/v1/events/${ev.id}/recipients`, { name: 'load' });
  const before = (await g.metrics()).argon2Verifications;
  const metrics = [
    { key: 'auth-get-4k', unit: 'req/s', note: `${sizes.authRequests} GETs, Basic, ${sizes.authConnections} connections (autocannon)` },
    { key: 'auth-get-4k-p99', unit: 'ms', note: 'latency p99' },
  ];
  await bench.compare(
    metrics,
    async () => {
      const r = await autocannon(`${g.url}/e/${ev.id}/files/small.bin`, basic(fresh.username, fresh.password), ctx);
      return [r.rps, r.p99];
    },
    peerSide(ctx.nginx, 'nginx', (n) => async () => {
      const r = await autocannon(`${n.url}/auth/small.bin`, basic(ctx.peerUser.name, ctx.peerUser.password), ctx);
      return [r.rps, r.p99];
    }),
  );
  const verifications = (await g.metrics()).argon2Verifications - before;
  const row = bench.rows['auth-get-4k'];
  bench.rows['auth-get-4k-argon2'] = {
    gateway: row.skipped ? null : verifications, peer: null, unit: 'verifications', ratio: null, rssMB: null, cpuSeconds: null, peerName: null,
    runs: { gateway: [], peer: [] }, note: `argon2 verifications over all ${sizes.runs} gateway runs (${sizes.runs * sizes.authRequests} requests, one fresh credential)`,
    ...(row.skipped ? { skipped: row.skipped } : {}),
  };
  log(`  auth-get-4k-argon2: ${verifications} verifications`);
}

async function eventCreationScenario(ctx: Ctx): Promise<void> {
  const { g, sizes, bench, log } = ctx;
  log(`event creation with ${sizes.manifestFiles} files`);
  const files = Array.from({ length: sizes.manifestFiles }, (_, i) => ({ path: `folder-${Math.floor(i / 100)}/file-${i}.bin`, size: 1024 * 1024 + i }));
  const body = JSON.stringify({ title: 'bench-manifest', files });
  await bench.compare(
    [
      { key: 'event-create-1000-p50', unit: 'ms', note: `POST /api/v1/events, ${sizes.manifestFiles}-file manifest, ${sizes.eventReps} sequential per run` },
      { key: 'event-create-1000-p99', unit: 'ms' },
    ],
    async () => {
      const ms: number[] = [];
      for (let i = 0; i < sizes.eventReps; i++) {
        const r = await g.http.request(`${g.url}/api/v1/events`, { method: 'POST', headers: { authorization: `Bearer ${g.sender.token}`, 'content-type': 'application/json' }, body });
        if (r.status !== 201) throw new Error(`POST /api/v1/events: HTTP ${r.status} ${r.body.toString().slice(0, 200)}`);
        ms.push(r.ms);
      }
      return [percentile(ms, 50), percentile(ms, 99)];
    },
    null,
  );
}
