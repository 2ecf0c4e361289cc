import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseConfig } from '../../src/config/load.js';
import { SqliteDatabase } from '../../src/db/sqlite.js';
import { Gateway } from '../../src/gateway.js';
import { createLogger } from '../../src/shared/log.js';
import { AdminClient } from '../helpers/adminHttp.js';
import { basic } from '../helpers/gateway.js';
import { rawRequest, startServe, type ServeChild } from '../helpers/ops.js';
import { call, connect, openSftp } from '../helpers/ssh2client.js';
import { hasTool, missingToolMessage } from '../helpers/tools.js';

/**
 * Operations acceptance legs that need every protocol at once: the shared lockout over WebDAV,
 * SFTP and the admin login (across a restart), 410 over WebDAV and SFTP, and SIGKILL during WebDAV
 * and SFTP uploads. Each runs the real `handoff serve` child.
 */
let dir: string;
let serve: ServeChild | null = null;
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'handoff-ops-proto-'));
});
test.after.always(async () => {
  serve?.child.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

interface Setup {
  configFile: string;
  dataDir: string;
  token: string;
  adminPassword: string;
}

async function setup(name: string): Promise<Setup> {
  const dataDir = join(dir, name);
  const configFile = join(dir, `${name}.json`);
  const config = { dataDir, http: { port: 0 }, sftp: { port: 0 }, auth: { argon2: { memoryCost: 1024, timeCost: 1, parallelism: 1 } }, log: { level: 'warn' } };
  await writeFile(configFile, JSON.stringify(config));
  const g = await Gateway.create(parseConfig(config), { log: createLogger('warn') });
  await g.accounts.add('alice', 'sender', 'alice-password-long');
  await g.accounts.add('root', 'admin', 'root-password-long');
  const token = await g.accounts.createToken('alice');
  await g.stop(0);
  return { configFile, dataDir, token, adminPassword: 'root-password-long' };
}

const sftpPortOf = (s: ServeChild) => Number(/sftp listening on 127\.0\.0\.1:(\d+)/.exec(s.stdout())![1]);

async function api(base: string, token: string, method: string, path: string, body?: unknown) {
  const r = await rawRequest(`${base}/api/v1${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: r.status, body: r.body.length ? JSON.parse(r.body.toString()) : null };
}

const propfind = (base: string, id: string, user: string, pass: string, localAddress?: string) =>
  rawRequest(`${base}/dav/${id}/`, { method: 'PROPFIND', headers: { authorization: basic(user, pass), depth: '1' }, localAddress });

async function sftpLogin(port: number, username: string, password: string, localAddress?: string): Promise<boolean> {
  try {
    const c = await connect({ port, username, password, localAddress, readyTimeout: 10_000 });
    c.end();
    return true;
  } catch {
    return false;
  }
}

test.serial('30 failed logins from 127.0.0.2 over WebDAV, SFTP and the admin page ban it on every protocol, also after a restart; 127.0.0.3 keeps working', async (t) => {
  const s = await setup('lockout');
  serve = await startServe(s.configFile);
  const ev = (await api(serve.url, s.token, 'POST', '/events', { files: [], recipients: [{ name: 'Rita' }] })).body;
  const rita = ev.recipients[0] as { username: string; password: string };
  let sftpPort = sftpPortOf(serve);
  for (let i = 0; i < 10; i++) {
    await propfind(serve.url, ev.id, 'alice', `wrong-dav-${i}`, '127.0.0.2');
    await sftpLogin(sftpPort, rita.username, `wrong-sftp-${i}`, '127.0.0.2');
    await new AdminClient(serve.url, '127.0.0.2').login('root', `wrong-admin-${i}`);
  }
  const refusedEverywhere = async (label: string) => {
    t.is((await propfind(serve!.url, ev.id, 'alice', 'alice-password-long', '127.0.0.2')).status, 429, `${label}: WebDAV`);
    t.false(await sftpLogin(sftpPort, rita.username, rita.password, '127.0.0.2'), `${label}: SFTP`);
    t.is((await new AdminClient(serve!.url, '127.0.0.2').login('root', s.adminPassword)).status, 429, `${label}: admin`);
    t.is((await rawRequest(`${serve!.url}/e/${ev.id}/`, { headers: { authorization: basic(rita.username, rita.password) }, localAddress: '127.0.0.2' })).status, 429, `${label}: web page`);
    t.is((await propfind(serve!.url, ev.id, 'alice', 'alice-password-long', '127.0.0.3')).status, 207, `${label}: WebDAV from 127.0.0.3`);
    t.true(await sftpLogin(sftpPort, rita.username, rita.password, '127.0.0.3'), `${label}: SFTP from 127.0.0.3`);
    t.is((await new AdminClient(serve!.url, '127.0.0.3').login('root', s.adminPassword)).status, 303, `${label}: admin from 127.0.0.3`);
  };
  await refusedEverywhere('before restart');
  serve.child.kill('SIGTERM');
  t.is(await serve.exited, 0);
  serve = await startServe(s.configFile);
  sftpPort = sftpPortOf(serve);
  await refusedEverywhere('after restart');
  serve.child.kill('SIGTERM');
  await serve.exited;
  serve = null;
});

test.serial('an expired event answers 410 over WebDAV and is gone over SFTP', async (t) => {
  const s = await setup('expired');
  serve = await startServe(s.configFile);
  const ev = (await api(serve.url, s.token, 'POST', '/events', { expires: '2s', files: [], recipients: [{ name: 'Late' }] })).body;
  const late = ev.recipients[0] as { username: string; password: string };
  await sleep(2200);
  t.is((await propfind(serve.url, ev.id, 'alice', 'alice-password-long')).status, 410);
  t.is((await rawRequest(`${serve.url}/dav/${ev.id}/x.txt`, { method: 'PUT', headers: { authorization: basic('alice', 'alice-password-long') }, body: 'x' })).status, 410);
  const c = await connect({ port: sftpPortOf(serve), username: late.username, password: late.password });
  const sftp = await openSftp(c);
  const err = await t.throwsAsync(call<unknown>((cb) => sftp.readdir('/', cb)));
  t.regex(String(err?.message), /expired|deleted|no such/i);
  c.end();
  serve.child.kill('SIGTERM');
  await serve.exited;
  serve = null;
});

test.serial('SIGKILL during WebDAV and SFTP uploads: nothing partial is listed complete, integrity ok, quota = Σ complete', async (t) => {
  if (!hasTool('curl')) return t.pass(missingToolMessage('curl'));
  const s = await setup('kill');
  serve = await startServe(s.configFile);
  const big = 64 * 1024 * 1024;
  const ev = (await api(serve.url, s.token, 'POST', '/events', { files: [{ path: 'dav.bin', size: big }, { path: 'done.txt', size: 5 }], recipients: [{ name: 'Kim' }] })).body;
  const kim = ev.recipients[0] as { username: string; password: string };
  t.true([201, 204].includes((await rawRequest(`${serve.url}/dav/${ev.id}/done.txt`, { method: 'PUT', headers: { authorization: basic('alice', 'alice-password-long') }, body: 'hello' })).status));
  // A throttled WebDAV PUT (curl) and an SFTP upload that never closes its handle.
  const curl = spawn('curl', ['-sS', '-T', '-', '--limit-rate', '2M', '-u', 'alice:alice-password-long', `${serve.url}/dav/${ev.id}/dav.bin`], { stdio: ['pipe', 'ignore', 'ignore'] });
  curl.on('error', () => undefined);
  curl.stdin.on('error', () => undefined);
  const chunk = Buffer.alloc(1024 * 1024, 7);
  const feed = setInterval(() => curl.stdin.write(chunk), 50);
  const c = await connect({ port: sftpPortOf(serve), username: 'alice', password: 'alice-password-long' });
  c.on('close', () => undefined);
  const sftp = await openSftp(c);
  const h = await call<Buffer>((cb) => sftp.open(`/${ev.id}/sftp.bin`, 'w', cb));
  for (let i = 0; i < 8; i++) await call((cb) => sftp.write(h, chunk, 0, chunk.length, i * chunk.length, cb));
  await sleep(1500);
  serve.child.kill('SIGKILL');
  await serve.exited;
  clearInterval(feed);
  curl.kill('SIGKILL');

  serve = await startServe(s.configFile);
  const view = (await api(serve.url, s.token, 'GET', `/events/${ev.id}`)).body;
  const state = Object.fromEntries(view.files.map((f: { path: string; state: string }) => [f.path, f.state]));
  t.is(state['done.txt'], 'complete');
  t.not(state['dav.bin'], 'complete');
  t.not(state['sftp.bin'], 'complete');
  const dav = (await propfind(serve.url, ev.id, 'alice', 'alice-password-long')).body.toString();
  t.true(dav.includes('done.txt'));
  t.false(dav.includes('dav.bin'), 'WebDAV lists no partial file');
  t.false(dav.includes('sftp.bin'));
  const c2 = await connect({ port: sftpPortOf(serve), username: kim.username, password: kim.password });
  const s2 = await openSftp(c2);
  const names = (await call<Array<{ filename: string }>>((cb) => s2.readdir('/', cb))).map((e) => e.filename);
  t.deepEqual(names, ['done.txt'], 'SFTP lists no partial file');
  c2.end();
  serve.child.kill('SIGTERM');
  await serve.exited;
  serve = null;
  const db = await SqliteDatabase.open(join(s.dataDir, 'handoff.db'));
  t.deepEqual(await db.query('PRAGMA integrity_check'), [{ integrity_check: 'ok' }]);
  const used = await db.get<{ used: number; sum: number }>(
    "SELECT e.used_bytes AS used, (SELECT COALESCE(SUM(bytes), 0) FROM files WHERE event_id = e.id AND state = 'complete' AND kind = 'file') AS sum FROM events e WHERE id = ?",
    [ev.id],
  );
  t.is(used?.used, used?.sum);
  t.is(used?.used, 5);
  await db.close();
});
