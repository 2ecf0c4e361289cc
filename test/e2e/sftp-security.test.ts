import test from 'ava';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestGateway, type Account, type TestGateway } from '../helpers/gateway.js';
import { run, sftpBatch, SSH_PASSWORD } from '../helpers/sftp.js';
import { call, closed, connect, openSftp } from '../helpers/ssh2client.js';
import { hasTool } from '../helpers/tools.js';

// Authentication, algorithms, refusals, limits and clean-up of the SFTP server.
const openssh = hasTool('sftp') && hasTool('sshpass') && hasTool('ssh-keygen');
let tg: TestGateway;
let work: string;
let port: number;
let sender: Account;
let eventId: string;
const lines: string[] = [];

async function keypair(name: string): Promise<{ priv: string; pub: string }> {
  const priv = join(work, name);
  const r = await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', priv]);
  if (r.code !== 0) throw new Error(r.stderr);
  return { priv, pub: (await readFile(priv + '.pub', 'utf8')).trim() };
}

async function addRecipient(body: Record<string, unknown>): Promise<{ username: string; password: string }> {
  const r = await tg.api(sender.token, 'POST', `/api/v1/events/${eventId}/recipients`, body);
  if (r.status !== 201) throw new Error(JSON.stringify(r.body));
  return r.body.credential ?? r.body;
}

test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'handoff-sftp-sec-'));
  tg = await startTestGateway(
    { auth: { lockout: { attempts: 6 } } },
    { gateway: { announce: (l) => lines.push(l), sftpLimits: { loginGraceMs: 1500, idleMs: 4000, handlesPerSession: 8, failureDelayMs: 50 } } },
  );
  port = tg.gateway.ports.sftp;
  sender = await tg.sender();
  const r = await tg.api(sender.token, 'POST', '/api/v1/events', { files: [], recipients: [{ name: 'pw reader' }] });
  eventId = r.body.id;
  await tg.api(sender.token, 'POST', `/api/v1/events/${eventId}/files`, { files: [{ path: 'seed.txt', size: 5 }] });
  const c = await connect({ port, username: sender.name, password: sender.password });
  const s = await openSftp(c);
  const h = await call<Buffer>((cb) => s.open(`/${eventId}/seed.txt`, 'w', cb));
  await call((cb) => s.write(h, Buffer.from('seed!'), 0, 5, 0, cb));
  await call((cb) => s.close(h, cb));
  c.end();
});

test.after.always(async () => {
  await tg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

test('port 0: the chosen port is announced and carried by event and recipient addresses; the host key fingerprint is printed', async (t) => {
  t.true(port > 0);
  t.true(lines.includes(`sftp listening on 127.0.0.1:${port}`), lines.join('\n'));
  const fp = lines.find((l) => l.startsWith('sftp host key ssh-ed25519 SHA256:'));
  t.truthy(fp);
  const ev = await tg.api(sender.token, 'GET', `/api/v1/events/${eventId}`);
  t.is(ev.body.addresses.sftp, `sftp://127.0.0.1:${port}/${eventId}/`);
  t.true(ev.body.recipients[0].sftp.endsWith(`@127.0.0.1:${port}/`));
  if (hasTool('ssh-keygen')) {
    const kg = await run('ssh-keygen', ['-lf', join(tg.dataDir, 'sftp_host_ed25519_key.pub')]);
    t.true(kg.stdout.includes(fp!.split(' ').pop()!), kg.stdout);
  }
});

test('public-key login works for a recipient; a wrong key fails', async (t) => {
  if (!openssh) return t.pass('needs Debian packages openssh-client and sshpass');
  const good = await keypair('rk1');
  const bad = await keypair('rk2');
  const rec = await addRecipient({ name: 'key reader', sshPublicKey: good.pub });
  const ok = await sftpBatch({ port, user: rec.username, key: good.priv }, ['ls -l', 'get seed.txt'], work);
  t.is(ok.code, 0, ok.stderr);
  t.is(await readFile(join(work, 'seed.txt'), 'utf8'), 'seed!');
  const no = await sftpBatch({ port, user: rec.username, key: bad.priv, bind: '127.0.0.3' }, ['ls'], work);
  t.not(no.code, 0);
  t.regex(no.stderr, /Permission denied/);
});

test('a sender key added with `handoff user key add` logs the sender in', async (t) => {
  if (!openssh) return t.pass('needs Debian packages openssh-client and sshpass');
  const k = await keypair('sk1');
  const cfg = join(work, 'cli.json');
  await writeFile(cfg, JSON.stringify({ dataDir: tg.dataDir, log: { level: 'warn' }, auth: { argon2: { memoryCost: 1024, timeCost: 1, parallelism: 1 } } }));
  const add = await run('node', ['dist/src/main.js', 'user', 'key', 'add', sender.name, k.priv + '.pub', '--config', cfg]);
  t.is(add.code, 0, add.stderr);
  t.regex(add.stdout, /added SHA256:/);
  const r = await sftpBatch({ port, user: sender.name, key: k.priv }, [`ls /${eventId}`], work);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /seed\.txt/);
});

test('revoking a recipient closes its open session at once and refuses new logins', async (t) => {
  const rec = await addRecipient({ name: 'soon revoked' });
  const c = await connect({ port, username: rec.username, password: rec.password, localAddress: '127.0.0.4' });
  const s = await openSftp(c);
  t.truthy(await call<unknown>((cb) => s.stat('/seed.txt', cb)));
  const gone = closed(c);
  const del = await tg.api(sender.token, 'DELETE', `/api/v1/events/${eventId}/recipients/${encodeURIComponent('soon revoked')}`);
  t.true(del.status < 300, JSON.stringify(del.body));
  await gone;
  await t.throwsAsync(connect({ port, username: rec.username, password: rec.password, localAddress: '127.0.0.4' }));
});

test('a locked-out IP is refused before authentication, other IPs are not', async (t) => {
  for (let i = 0; i < 3; i++) {
    await t.throwsAsync(connect({ port, username: `nobody${i}`, password: 'wrong-password', localAddress: '127.0.0.2' }));
  }
  const err = await t.throwsAsync(connect({ port, username: sender.name, password: sender.password, localAddress: '127.0.0.2' }));
  t.notRegex(String(err?.message), /authentication methods failed/, 'refused before auth, not by a password check');
  const ok = await connect({ port, username: sender.name, password: sender.password, localAddress: '127.0.0.1' });
  ok.end();
  if (openssh) {
    const r = await sftpBatch({ port, user: sender.name, password: sender.password, bind: '127.0.0.2' }, ['ls'], work);
    t.not(r.code, 0);
  }
});

/** Reads the server's plaintext KEXINIT and returns its name-lists. */
function readKexInit(): Promise<Record<string, string[]>> {
  return new Promise((resolve, reject) => {
    const sock = tcpConnect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let identDone = false;
    sock.on('error', reject);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!identDone) {
        const nl = buf.indexOf('\r\n');
        if (nl < 0) return;
        identDone = true;
        buf = buf.subarray(nl + 2);
        sock.write('SSH-2.0-HandoffProbe\r\n');
      }
      if (buf.length < 5 || buf.length < 4 + buf.readUInt32BE(0)) return;
      const payload = buf.subarray(5, 4 + buf.readUInt32BE(0) - buf[4]);
      if (payload[0] !== 20) return reject(new Error(`expected KEXINIT, got ${payload[0]}`));
      let p = 17;
      const names = ['kex', 'hostKey', 'cipherCS', 'cipherSC', 'macCS', 'macSC', 'compCS', 'compSC'];
      const out: Record<string, string[]> = {};
      for (const n of names) {
        const len = payload.readUInt32BE(p);
        out[n] = payload.subarray(p + 4, p + 4 + len).toString().split(',');
        p += 4 + len;
      }
      sock.destroy();
      resolve(out);
    });
  });
}

test('KEXINIT offers none of the refused algorithms and announces strict KEX', async (t) => {
  const k = await readKexInit();
  t.true(k.kex.includes('kex-strict-s-v00@openssh.com'));
  t.false(k.kex.some((a) => /sha1/.test(a)), k.kex.join());
  t.false(k.hostKey.some((a) => a === 'ssh-rsa' || a === 'ssh-dss'), k.hostKey.join());
  for (const c of [...k.cipherCS, ...k.cipherSC]) t.false(/cbc|arcfour|3des|blowfish/.test(c), c);
  for (const m of [...k.macCS, ...k.macSC]) t.false(/sha1|md5|ripemd/.test(m), m);
  t.deepEqual([...new Set([...k.compCS, ...k.compSC])], ['none']);
});

for (const opt of ['HostKeyAlgorithms=ssh-rsa', 'Ciphers=aes128-cbc', 'KexAlgorithms=diffie-hellman-group14-sha1', 'MACs=hmac-sha1 -o Ciphers=aes128-ctr']) {
  test(`OpenSSH with -o ${opt} cannot connect`, async (t) => {
    if (!openssh) return t.pass('needs Debian packages openssh-client and sshpass');
    const opts = opt.split(' -o ').flatMap((o) => ['-o', o]);
    const r = await run('sshpass', ['-p', sender.password, 'sftp', ...opts, ...SSH_PASSWORD, '-P', String(port), '-b', '/dev/null', `${sender.name}@127.0.0.1`]);
    t.not(r.code, 0);
    t.notRegex(r.stderr, /Permission denied/, 'refused during key exchange, before authentication');
  });
}

test('OpenSSH with -o MACs=hmac-sha1 never gets hmac-sha1: only AEAD ciphers are offered, which carry no separate MAC', async (t) => {
  if (!openssh) return t.pass('needs Debian packages openssh-client and sshpass');
  const r = await run('sshpass', ['-p', sender.password, 'sftp', '-o', 'LogLevel=DEBUG1', '-o', 'MACs=hmac-sha1', ...SSH_PASSWORD, '-P', String(port), '-b', '/dev/null', `${sender.name}@127.0.0.1`]);
  const kex = r.stderr.split('\n').filter((l) => /kex: (client->server|server->client) cipher/.test(l));
  t.is(kex.length, 2, r.stderr);
  t.true(kex.every((l) => /cipher: aes(128|256)-gcm@openssh.com MAC: <implicit>/.test(l)), kex.join('\n'));
  t.notRegex(r.stderr, /MAC: hmac-sha1/);
});

test('exec, shell, other subsystems and forwarding are refused', async (t) => {
  const c = await connect({ port, username: sender.name, password: sender.password });
  await t.throwsAsync(call<unknown>((cb) => c.exec('id', cb)));
  await t.throwsAsync(call<unknown>((cb) => c.shell(cb)));
  await t.throwsAsync(call<unknown>((cb) => c.subsys('netconf', cb)));
  await t.throwsAsync(call<unknown>((cb) => c.forwardOut('127.0.0.1', 1, '127.0.0.1', tg.gateway.ports.http, cb)));
  await t.throwsAsync(call<unknown>((cb) => c.forwardIn('127.0.0.1', 0, cb)));
  c.end();
});

test('symlinks and readlink are refused; the per-session handle cap holds', async (t) => {
  const c = await connect({ port, username: sender.name, password: sender.password });
  const s = await openSftp(c);
  await t.throwsAsync(call((cb) => s.symlink(`/${eventId}/seed.txt`, `/${eventId}/link`, cb)));
  await t.throwsAsync(call<unknown>((cb) => s.readlink(`/${eventId}/seed.txt`, cb)));
  const handles: Buffer[] = [];
  for (let i = 0; i < 8; i++) handles.push(await call<Buffer>((cb) => s.opendir(`/${eventId}`, cb)));
  const err = await t.throwsAsync(call<Buffer>((cb) => s.open(`/${eventId}/seed.txt`, 'w', cb)));
  t.regex(String(err?.message), /too many open handles/);
  for (const h of handles) await call((cb) => s.close(h, cb));
  t.is((await call<Buffer>((cb) => s.readFile(`/${eventId}/seed.txt`, cb))).toString(), 'seed!', 'the refused open truncated nothing');
  c.end();
});

test("OPEN's flags: EXCL refuses an existing file, no CREAT a missing or only announced one; without TRUNC the content is kept", async (t) => {
  const c = await connect({ port, username: sender.name, password: sender.password });
  const s = await openSftp(c);
  const path = `/${eventId}/flags.txt`;
  const h = await call<Buffer>((cb) => s.open(path, 'wx', cb));
  await call((cb) => s.write(h, Buffer.from('flags'), 0, 5, 0, cb));
  await call((cb) => s.close(h, cb));
  const exclusive = await t.throwsAsync(call<Buffer>((cb) => s.open(path, 'wx', cb)));
  t.regex(String(exclusive?.message), /already exists/);
  const missing = await t.throwsAsync(call<Buffer>((cb) => s.open(`/${eventId}/nothing-here.txt`, 'r+', cb)));
  t.is((missing as Error & { code?: number }).code, 2, 'NO_SUCH_FILE');
  await tg.api(sender.token, 'POST', `/api/v1/events/${eventId}/files`, { files: [{ path: 'announced-only.txt', size: 3 }] });
  const announced = await t.throwsAsync(call<Buffer>((cb) => s.open(`/${eventId}/announced-only.txt`, 'r+', cb)));
  t.is((announced as Error & { code?: number }).code, 2, 'an announced file has no content to open yet');
  // READ|WRITE without TRUNC writes into the existing bytes.
  const rw = await call<Buffer>((cb) => s.open(path, 'r+', cb));
  await call((cb) => s.write(rw, Buffer.from('XY'), 0, 2, 1, cb));
  await call((cb) => s.close(rw, cb));
  t.is((await call<Buffer>((cb) => s.readFile(path, cb))).toString(), 'fXYgs');
  const folder = await t.throwsAsync(call<Buffer>((cb) => s.open(`/${eventId}`, 'w', cb)));
  t.truthy(folder);
  c.end();
});

test('out-of-order writes commit on CLOSE only; a dropped connection leaves no partial file behind', async (t) => {
  const c = await connect({ port, username: sender.name, password: sender.password });
  const s = await openSftp(c);
  const h = await call<Buffer>((cb) => s.open(`/${eventId}/ooo.bin`, 'w', cb));
  const a = Buffer.alloc(100_000, 1);
  const b = Buffer.alloc(50_000, 2);
  await Promise.all([call((cb) => s.write(h, b, 0, b.length, a.length, cb)), call((cb) => s.write(h, a, 0, a.length, 0, cb))]);
  const other = await connect({ port, username: sender.name, password: sender.password });
  const s2 = await openSftp(other);
  await t.throwsAsync(call<unknown>((cb) => s2.stat(`/${eventId}/ooo.bin`, cb)), undefined, 'not visible before CLOSE');
  await call((cb) => s.close(h, cb));
  t.true((await call<Buffer>((cb) => s2.readFile(`/${eventId}/ooo.bin`, cb))).equals(Buffer.concat([a, b])));
  const h2 = await call<Buffer>((cb) => s.open(`/${eventId}/partial.bin`, 'w', cb));
  await call((cb) => s.write(h2, a, 0, a.length, 0, cb));
  const gone = closed(c);
  (c as unknown as { _sock: { destroy(): void } })._sock.destroy();
  await gone;
  for (let i = 0; i < 100; i++) {
    const n = await tg.gateway.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM uploads');
    if (n?.n === 0) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  t.is((await tg.gateway.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM uploads'))?.n, 0);
  await t.throwsAsync(call<unknown>((cb) => s2.stat(`/${eventId}/partial.bin`, cb)));
  const files = (await tg.api(sender.token, 'GET', `/api/v1/events/${eventId}`)).body.files.map((f: { path: string }) => f.path);
  t.false(files.includes('partial.bin'));
  other.end();
});

test('a silent TCP client is dropped after the login grace time', async (t) => {
  const sock = tcpConnect(port, '127.0.0.5');
  sock.on('error', () => undefined);
  await new Promise<void>((resolve) => sock.on('close', () => resolve()));
  t.pass();
});

test('an idle authenticated session is closed', async (t) => {
  const c = await connect({ port, username: sender.name, password: sender.password, localAddress: '127.0.0.6' });
  await openSftp(c);
  await closed(c);
  t.pass();
});

test('malformed SFTP packets close only that channel; the server keeps serving', async (t) => {
  const c = await connect({ port, username: sender.name, password: sender.password });
  const raw = await call<import('node:stream').Duplex>((cb) => c.subsys('sftp', cb as never));
  const ended = new Promise<void>((resolve) => raw.on('close', () => resolve()));
  raw.on('data', () => undefined);
  // INIT, then a packet that claims 2 GiB.
  raw.write(Buffer.from([0, 0, 0, 5, 1, 0, 0, 0, 3]));
  raw.write(Buffer.from([0x7f, 0xff, 0xff, 0xff, 3, 0, 0, 0, 1]));
  await ended;
  const s = await openSftp(c);
  t.truthy(await call<unknown>((cb) => s.stat(`/${eventId}/seed.txt`, cb)));
  c.end();
});
