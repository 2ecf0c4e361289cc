import test from 'ava';
import { call, connect, openSftp } from '../helpers/ssh2client.js';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import { Gateway } from '../../src/gateway.js';
import { createLogger } from '../../src/shared/log.js';
import { basic } from '../helpers/gateway.js';
import { rawRequest, startServe, tusCreate, type ServeChild } from '../helpers/ops.js';
import { hasTool } from '../helpers/tools.js';

let dir: string;
let serve: ServeChild | null = null;
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'handoff-tls-'));
});
test.after.always(async () => {
  serve?.child.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

function makeCert(name: string): { cert: string; key: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-subj', `/CN=handoff-test-${name}`, '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert,
  ], { stdio: 'ignore' });
  return { cert, key };
}

const fingerprintOf = async (certFile: string) => new X509Certificate(await readFile(certFile)).fingerprint256.replace(/:/g, '').toLowerCase();

test('HTTPS serves the web page and the API with HSTS, redirects plain HTTP, and SIGHUP swaps the certificate', async (t) => {
  if (!hasTool('openssl')) return void t.pass('skipped: openssl missing (Debian package openssl)');
  const a = makeCert('a');
  const b = makeCert('b');
  // The configured paths; renewals overwrite them in place, as certbot's deploy hooks do.
  const live = { cert: join(dir, 'live.crt'), key: join(dir, 'live.key') };
  await copyFile(a.cert, live.cert);
  await copyFile(a.key, live.key);
  const config = {
    dataDir: join(dir, 'data'), http: { port: 0, tls: { ...live, redirectPort: 0 } }, sftp: { port: 0 },
    auth: { argon2: { memoryCost: 1024, timeCost: 1, parallelism: 1 } }, log: { level: 'info' },
  };
  const configFile = join(dir, 'config.json');
  await writeFile(configFile, JSON.stringify(config));
  const setup = await Gateway.create(parseConfig(config), { log: createLogger('warn') });
  await setup.accounts.add('carol', 'sender', 'carol-password-long');
  const token = await setup.accounts.createToken('carol');
  await setup.stop(0);

  serve = await startServe(configFile);
  const base = serve.url;
  t.regex(base, /^https:\/\/127\.0\.0\.1:\d+$/);
  const health = await rawRequest(`${base}/healthz`);
  t.is(health.status, 200);
  t.is(health.headers['strict-transport-security'], 'max-age=31536000');
  t.is(health.fingerprint, await fingerprintOf(a.cert));

  // API and web page over HTTPS.
  const created = await rawRequest(`${base}/api/v1/events`, {
    method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ files: [{ path: 'hello.txt', size: 5 }], recipients: [{ name: 'Rita' }] }),
  });
  t.is(created.status, 201);
  const ev = JSON.parse(created.body.toString());
  t.true(ev.addresses.web.startsWith(`${base}/e/`), 'addresses use https');
  t.is((await tusCreate(base, ev.id, `Bearer ${token}`, 'hello.txt', 5, Buffer.from('hello'))).status, 201);
  const rita = { authorization: basic(ev.recipients[0].username, ev.recipients[0].password) };
  const page = await rawRequest(ev.addresses.web, { headers: rita });
  t.is(page.status, 200);
  t.regex(page.body.toString(), /hello\.txt/);
  t.is((await rawRequest(`${base}/e/${ev.id}/files/hello.txt`, { headers: rita })).body.toString(), 'hello');
  // WebDAV over the same HTTPS port.
  const dav = await rawRequest(`${base}/dav/${ev.id}/`, { method: 'PROPFIND', headers: { ...rita, depth: '1' } });
  t.is(dav.status, 207);
  t.regex(dav.body.toString(), /hello\.txt/);
  t.is((await rawRequest(`${base}/dav/${ev.id}/hello.txt`, { headers: rita })).body.toString(), 'hello');

  // Plain HTTP on the redirect port goes to the same path on HTTPS.
  const redirect = /http redirect listening on (\S+)/.exec(serve.stdout())![1];
  const r = await rawRequest(`${redirect}/e/${ev.id}/?x=1`);
  t.is(r.status, 308);
  t.is(r.headers.location, `${base}/e/${ev.id}/?x=1`);

  // An SFTP session open across the reload keeps working: SIGHUP touches only the HTTPS certificate.
  const sftpPort = Number(/sftp listening on 127\.0\.0\.1:(\d+)/.exec(serve.stdout())![1]);
  const ssh = await connect({ port: sftpPort, username: ev.recipients[0].username, password: ev.recipients[0].password });
  const sftp = await openSftp(ssh);
  t.deepEqual((await call<Array<{ filename: string }>>((cb) => sftp.readdir('/', cb))).map((e) => e.filename), ['hello.txt']);

  // Renewal: overwrite the files, SIGHUP, new connections see the new certificate.
  await copyFile(b.cert, live.cert);
  await copyFile(b.key, live.key);
  serve.child.kill('SIGHUP');
  await serve.waitForLog('tls certificate reloaded');
  t.deepEqual((await call<Array<{ filename: string }>>((cb) => sftp.readdir('/', cb))).map((e) => e.filename), ['hello.txt'], 'the SFTP session survived SIGHUP');
  t.is((await call<Buffer>((cb) => sftp.readFile('/hello.txt', cb))).toString(), 'hello');
  ssh.end();
  const after = await rawRequest(`${base}/healthz`);
  t.is(after.status, 200);
  t.is(after.fingerprint, await fingerprintOf(b.cert));
  t.not(after.fingerprint, health.fingerprint);

  // A broken renewal keeps the working certificate.
  await writeFile(live.cert, 'not a certificate');
  serve.child.kill('SIGHUP');
  await serve.waitForLog('tls reload failed');
  const still = await rawRequest(`${base}/healthz`);
  t.is(still.status, 200);
  t.is(still.fingerprint, await fingerprintOf(b.cert));
  t.is(serve.child.exitCode, null, 'the server is still running');

  serve.child.kill('SIGTERM');
  t.is(await serve.exited, 0);
  serve = null;
});
