import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../src/shared/packageRoot.js';
import { basic, startTestGateway, TEST_CONFIG, type TestGateway } from '../helpers/gateway.js';
import { b64, rawRequest } from '../helpers/ops.js';

let dir: string;
let tg: TestGateway | null = null;
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'handoff-lockout-'));
});
test.after.always(async () => {
  await tg?.stop();
  await rm(dir, { recursive: true, force: true });
});

const cli = (...args: string[]) => spawnSync(process.execPath, [join(packageRoot(), 'dist', 'src', 'main.js'), ...args], { encoding: 'utf8' });

test.serial('30 failed logins from 127.0.0.2 over web, API and tus ban it everywhere, across a restart, while 127.0.0.3 works; handoff lockout list|clear', async (t) => {
  const dataDir = join(dir, 'data');
  tg = await startTestGateway({}, { dataDir });
  const s = await tg.sender();
  const ev = await tg.api(s.token, 'POST', '/api/v1/events', { files: [{ path: 'x.txt', size: 1 }], recipients: [{ name: 'Rex' }] });
  const id = ev.body.id as string;
  const rex = ev.body.recipients[0] as { username: string; password: string };
  const tusHeaders = (auth: string) => ({ authorization: auth, 'tus-resumable': '1.0.0', 'upload-length': '1', 'upload-metadata': `path ${b64('x.txt')}` });

  /** One request per protocol with the given credentials, from one source address. */
  const probe = async (from: string, good: boolean) => {
    const url = tg!.url;
    const web = await rawRequest(`${url}/e/${id}/`, { localAddress: from, headers: { authorization: basic(rex.username, good ? rex.password : 'wrong-password') } });
    const api = await rawRequest(`${url}/api/v1/events`, { localAddress: from, headers: { authorization: `Bearer ${good ? s.token : 'hnd_wrong'}` } });
    const tus = await rawRequest(`${url}/api/v1/events/${id}/uploads/`, { method: 'POST', localAddress: from, headers: tusHeaders(good ? `Bearer ${s.token}` : basic('nobody', 'guess')) });
    return [web.status, api.status, tus.status];
  };

  const seen = new Set<number>();
  for (let i = 0; i < 10; i++) for (const st of await probe('127.0.0.2', false)) seen.add(st);
  t.deepEqual([...seen].sort(), [401, 429], 'failures answer 401 until the ban, then 429');

  t.deepEqual(await probe('127.0.0.2', true), [429, 429, 429], 'banned on every protocol even with good credentials');
  t.deepEqual(await probe('127.0.0.3', true), [200, 200, 201], 'another address is unaffected');

  await tg.stop();
  tg = await startTestGateway({}, { dataDir });
  t.deepEqual(await probe('127.0.0.2', true), [429, 429, 429], 'the ban survives a restart');
  t.deepEqual(await probe('127.0.0.3', true), [200, 200, 201]);

  const configFile = join(dir, 'config.json');
  await writeFile(configFile, JSON.stringify({ ...(TEST_CONFIG as object), dataDir }));
  const list = cli('lockout', 'list', '--json', '--config', configFile);
  t.is(list.status, 0, list.stderr);
  const entries = JSON.parse(list.stdout) as Array<{ key: string; banned: boolean; strikes: number }>;
  t.like(entries.find((e) => e.key === 'ip:127.0.0.2'), { banned: true, strikes: 1 });
  t.false(entries.some((e) => e.key === 'ip:127.0.0.3'));
  t.false(entries.find((e) => e.key === `user:${rex.username}`)?.banned ?? false, 'the username alone stays below its own threshold');
  t.regex(cli('lockout', 'list', '--config', configFile).stdout, /ip:127\.0\.0\.2\tscore \d+\tstrikes 1\tbanned until /);

  const clear = cli('lockout', 'clear', '127.0.0.2', '--config', configFile);
  t.is(clear.status, 0, clear.stderr);
  t.regex(clear.stdout, /cleared 1 lockout entry/);
  t.deepEqual(await probe('127.0.0.2', true), [200, 200, 201], 'cleared while the server runs');
  const unknown = cli('lockout', 'clear', 'ip:10.9.9.9', '--config', configFile);
  t.is(unknown.status, 1);
  t.regex(unknown.stderr, /no lockout entry/);
  t.is(cli('lockout', 'clear', '--config', configFile).status, 0);
  t.is(cli('lockout', '--help').status, 0);
});

test.serial('the right password of a revoked or expired recipient is refused but not scored (a retrying client does not ban its address)', async (t) => {
  const s = await tg!.sender();
  const ev = await tg!.api(s.token, 'POST', '/api/v1/events', { files: [{ path: 'y.txt', size: 1 }], recipients: [{ name: 'Old' }] });
  const old = ev.body.recipients[0] as { username: string; password: string };
  t.is((await tg!.api(s.token, 'DELETE', `/api/v1/events/${ev.body.id}/recipients/Old`)).status, 204);
  for (let i = 0; i < 12; i++) {
    const r = await rawRequest(`${tg!.url}/e/${ev.body.id}/`, { localAddress: '127.0.0.4', headers: { authorization: basic(old.username, old.password) } });
    t.is(r.status, 401);
  }
  t.false((await tg!.gateway.lockout.list()).some((e) => e.key === 'ip:127.0.0.4'));
});
