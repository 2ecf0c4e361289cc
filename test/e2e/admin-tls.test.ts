import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { hasTool } from '../helpers/tools.js';

let gw: TestGateway | undefined;
let dir: string;
let ca: Buffer;

const present = hasTool('openssl');

test.before(async () => {
  if (!present) return;
  dir = await mkdtemp(join(tmpdir(), 'handoff-tls-'));
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
  ], { stdio: 'ignore' });
  ca = await readFile(join(dir, 'cert.pem'));
  gw = await startTestGateway({ http: { tls: { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') } } });
});
test.after.always(async () => {
  await gw?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function get(url: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    request(url, { ca }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    }).on('error', reject).end();
  });
}

test('behind TLS the session cookie is Secure with the __Host- prefix, and HSTS is sent', async (t) => {
  if (!gw) {
    t.log('skipped: openssl is missing; install the Debian package "openssl"');
    return t.pass();
  }
  t.regex(gw.url, /^https:/);
  const a = await get(`${gw.url}/admin/login`);
  t.is(a.status, 200);
  const cookie = ([] as string[]).concat(a.headers['set-cookie'] ?? [])[0];
  t.regex(cookie, /^__Host-handoff-admin=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Secure$/);
  t.regex(String(a.headers['strict-transport-security']), /max-age=\d+/);
});
