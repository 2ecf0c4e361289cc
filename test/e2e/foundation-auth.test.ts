import test from 'ava';
import { request } from 'node:http';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { basic, startTestGateway, type Account, type TestGateway } from '../helpers/gateway.js';
import { packageRoot } from '../../src/shared/packageRoot.js';

let g: TestGateway;
let alice: Account;
let ev: { id: string; recipients: Array<{ username: string; password: string }> };

test.before(async () => {
  g = await startTestGateway({ auth: { lockout: { attempts: 10, windowSeconds: 900, banSeconds: 900, safelist: [] } } });
  alice = await g.sender('alice');
  ev = (await g.api(alice.token, 'POST', '/api/v1/events', { files: [], recipients: [{ name: 'R' }] })).body;
});
test.after.always(async () => g?.stop());

/** GET from a chosen loopback source address, as a distinct client. */
function getFrom(localAddress: string, path: string, authorization?: string): Promise<number> {
  const u = new URL(g.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, localAddress, headers: authorization ? { authorization } : {} }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

test.serial('repeated Basic auth costs one argon2 verification, not one per request', async (t) => {
  const r = ev.recipients[0];
  const before = g.gateway.hasher.verifications;
  for (let i = 0; i < 25; i++) t.is(await getFrom('127.0.0.1', `/e/${ev.id}/`, basic(r.username, r.password)), 200);
  t.is(g.gateway.hasher.verifications - before, 1);
});

test.serial('secrets over 1 KiB are refused before hashing', async (t) => {
  const before = g.gateway.hasher.verifications;
  t.is(await getFrom('127.0.0.4', `/e/${ev.id}/`, basic(ev.recipients[0].username, 'x'.repeat(2000))), 401);
  t.is(g.gateway.hasher.verifications, before);
});

test.serial('unknown users cost a dummy verification, like known ones', async (t) => {
  const before = g.gateway.hasher.verifications;
  t.is(await getFrom('127.0.0.5', `/e/${ev.id}/`, basic('nobody-at-all', 'some password here')), 401);
  t.true(g.gateway.hasher.verifications > before);
});

test.serial('failed attempts lock out the source address on every route, not other clients', async (t) => {
  const r = ev.recipients[0];
  const statuses: number[] = [];
  for (let i = 0; i < 11; i++) statuses.push(await getFrom('127.0.0.2', `/e/${ev.id}/`, basic(r.username, `wrong-${i}`)));
  t.true(statuses.slice(0, 9).every((s) => s === 401), statuses.join());
  t.is(statuses[10], 429, statuses.join());
  // Now even the right password from 127.0.0.2 is refused, over the page, the API and tus.
  t.is(await getFrom('127.0.0.2', `/e/${ev.id}/`, basic(r.username, r.password)), 429);
  t.is(await getFrom('127.0.0.2', '/api/v1/events', `Bearer ${alice.token}`), 429);
  t.is(await getFrom('127.0.0.3', `/e/${ev.id}/`, basic(r.username, r.password)), 200);
  const banned = await g.gateway.lockout.list();
  t.true(banned.some((b) => b.key === 'ip:127.0.0.2' && b.bannedUntil !== null));
});

test('npm start serves /healthz', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'handoff-start-'));
  const config = join(dir, 'c.json');
  await writeFile(config, JSON.stringify({ dataDir: join(dir, 'var'), http: { port: 0 }, sftp: { port: 0 } }));
  const child = spawn('npm', ['start', '--silent'], { cwd: packageRoot(), env: { ...process.env, HANDOFF_CONFIG: config }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c));
  child.stderr!.on('data', (c: Buffer) => (out += c));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(out)), 30_000);
      child.stdout!.on('data', () => {
        const m = /http listening on (\S+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
    });
    t.is((await fetch(`${url}/healthz`)).status, 200);
  } finally {
    process.kill(-child.pid!, 'SIGTERM');
    await once(child, 'exit');
    await rm(dir, { recursive: true, force: true });
  }
});
