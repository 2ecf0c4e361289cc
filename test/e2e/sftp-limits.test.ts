import test from 'ava';
import { connect as tcpConnect, type Socket } from 'node:net';
import { startTestGateway, type Account, type TestGateway } from '../helpers/gateway.js';
import { call, connect, openSftp } from '../helpers/ssh2client.js';

// Connection caps and quota over SFTP, on a gateway with tight limits.
let tg: TestGateway;
let port: number;
let sender: Account;
let eventId: string;

test.before(async () => {
  tg = await startTestGateway({ events: { quotaSlack: 1024 * 1024 } }, { gateway: { sftpLimits: { perIpUnauthenticated: 2, perIpConnections: 3, loginGraceMs: 5000 } } });
  port = tg.gateway.ports.sftp;
  sender = await tg.sender();
  eventId = (await tg.api(sender.token, 'POST', '/api/v1/events', { files: [] })).body.id;
});

test.after.always(async () => {
  await tg?.stop();
});

/** Connects and reports whether the server sent its SSH banner or closed the socket first. */
function probe(localAddress: string): Promise<{ sock: Socket; banner: boolean }> {
  return new Promise((resolve) => {
    const sock = tcpConnect({ port, host: '127.0.0.1', localAddress });
    sock.on('error', () => undefined);
    sock.once('data', () => resolve({ sock, banner: true }));
    sock.once('close', () => resolve({ sock, banner: false }));
  });
}

test.serial('unauthenticated connections per address are capped; other addresses are unaffected', async (t) => {
  const a = await probe('127.0.0.7');
  const b = await probe('127.0.0.7');
  const c = await probe('127.0.0.7');
  t.true(a.banner);
  t.true(b.banner);
  t.false(c.banner, 'the third unauthenticated connection from one address is dropped');
  const other = await probe('127.0.0.8');
  t.true(other.banner);
  for (const p of [a, b, c, other]) p.sock.destroy();
});

test.serial('an upload over the quota fails and leaves no file', async (t) => {
  const conn = await connect({ port, username: sender.name, password: sender.password, localAddress: '127.0.0.9' });
  const s = await openSftp(conn);
  const h = await call<Buffer>((cb) => s.open(`/${eventId}/too-big.bin`, 'w', cb));
  const chunk = Buffer.alloc(256 * 1024, 1);
  let failed = false;
  for (let i = 0; i < 8 && !failed; i++) {
    await call((cb) => s.write(h, chunk, 0, chunk.length, i * chunk.length, cb)).catch(() => (failed = true));
  }
  t.true(failed, 'a WRITE past the quota is refused');
  await call((cb) => s.close(h, cb)).catch(() => undefined);
  await t.throwsAsync(call<unknown>((cb) => s.stat(`/${eventId}/too-big.bin`, cb)));
  const ev = await tg.api(sender.token, 'GET', `/api/v1/events/${eventId}`);
  t.is(ev.body.usedBytes, 0);
  t.deepEqual(ev.body.files, []);
  conn.end();
});
