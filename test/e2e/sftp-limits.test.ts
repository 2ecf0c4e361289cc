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

test.serial('space freed by a delete is usable at once (the quota pre-check forgets what it read)', async (t) => {
  const conn = await connect({ port, username: sender.name, password: sender.password, localAddress: '127.0.0.11' });
  const s = await openSftp(conn);
  const part = Buffer.alloc(700 * 1024, 3);
  const put = async (name: string) => {
    const h = await call<Buffer>((cb) => s.open(`/${eventId}/${name}`, 'w', cb));
    try {
      await call((cb) => s.write(h, part, 0, part.length, 0, cb));
    } catch (err) {
      await call((cb) => s.close(h, cb)).catch(() => undefined);
      throw err;
    }
    await call((cb) => s.close(h, cb));
  };
  await put('first.bin');
  await t.throwsAsync(put('second.bin'), undefined, 'two do not fit in 1 MiB');
  await call((cb) => s.unlink(`/${eventId}/first.bin`, cb));
  await put('second.bin');
  t.is((await call<{ size: number }>((cb) => s.stat(`/${eventId}/second.bin`, cb))).size, part.length);
  await call((cb) => s.unlink(`/${eventId}/second.bin`, cb));
  conn.end();
});

test.serial('a client that floods READs and stops reading cannot make the server buffer without bound', async (t) => {
  const up = await connect({ port, username: sender.name, password: sender.password, localAddress: '127.0.0.10' });
  const s = await openSftp(up);
  await call((cb) => s.writeFile(`/${eventId}/src.bin`, Buffer.alloc(512 * 1024, 5), cb));
  up.end();
  const c = await connect({ port, username: sender.name, password: sender.password, localAddress: '127.0.0.10' });
  const raw = await call<import('node:stream').Duplex>((cb) => c.subsys('sftp', cb as never));
  const handle = new Promise<Buffer>((resolve) => {
    let buf = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      // VERSION, then the HANDLE reply to our OPEN (id 1).
      const vlen = buf.length >= 4 ? buf.readUInt32BE(0) : Infinity;
      if (buf.length < 4 + vlen + 4) return;
      const rest = buf.subarray(4 + vlen);
      if (rest.length < 4 + rest.readUInt32BE(0)) return;
      raw.off('data', onData);
      raw.pause();
      resolve(rest.subarray(13, 13 + rest.readUInt32BE(9)));
    };
    raw.on('data', onData);
  });
  const str = (s: string) => {
    const b = Buffer.from(s);
    const h = Buffer.alloc(4);
    h.writeUInt32BE(b.length);
    return Buffer.concat([h, b]);
  };
  const pkt = (type: number, id: number, body: Buffer) => {
    const h = Buffer.alloc(9);
    h.writeUInt32BE(body.length + 5);
    h[4] = type;
    h.writeUInt32BE(id, 5);
    return Buffer.concat([h, body]);
  };
  raw.write(Buffer.from([0, 0, 0, 5, 1, 0, 0, 0, 3]));
  raw.write(pkt(3, 1, Buffer.concat([str(`/${eventId}/src.bin`), Buffer.from([0, 0, 0, 1, 0, 0, 0, 0])])));
  const h = await handle;
  const before = process.memoryUsage().rss;
  // 6,000 READs of 256 KiB each ask for 1.5 GiB of replies; the client reads none of them.
  const handleField = Buffer.concat([Buffer.from([0, 0, 0, h.length]), h]);
  const reads: Buffer[] = [];
  for (let i = 0; i < 6000; i++) {
    const offLen = Buffer.alloc(12);
    offLen.writeUInt32BE(256 * 1024, 8);
    reads.push(pkt(5, 2 + i, Buffer.concat([handleField, offLen])));
  }
  raw.write(Buffer.concat(reads));
  await new Promise((r) => setTimeout(r, 3000));
  const grown = (process.memoryUsage().rss - before) / 2 ** 20;
  t.log(`RSS grew ${grown.toFixed(1)} MiB while 1.5 GiB of replies were asked for`);
  t.true(grown < 100, `RSS grew ${grown.toFixed(0)} MiB`);
  const first = await new Promise<Buffer>((resolve) => {
    raw.once('data', (d: Buffer) => resolve(d));
    raw.resume();
  });
  t.is(first[4], 103, 'the replies waiting are DATA packets: the READs were real');
  c.end();
  const again = await connect({ port, username: sender.name, password: sender.password, localAddress: '127.0.0.10' });
  t.truthy(await call<unknown>((cb) => openSftp(again).then((s2) => s2.stat(`/${eventId}/src.bin`, cb))));
  again.end();
});
