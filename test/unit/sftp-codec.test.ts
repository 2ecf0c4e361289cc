import test from 'ava';
import { BadMessage, encode, PacketFramer, Reader } from '../../src/protocols/sftp/codec.js';
import { longName, virtualPath } from '../../src/protocols/sftp/tree.js';
import { SFTP_STATUS } from '../../src/protocols/sftp/errors.js';
import { ERROR_CODES } from '../../src/shared/errors.js';

function packet(type: number, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(body.length + 1);
  head[4] = type;
  return Buffer.concat([head, body]);
}

test('the framer reassembles packets split anywhere and splits packets sharing a chunk', (t) => {
  const a = packet(17, Buffer.from('abc'));
  const b = packet(6, Buffer.alloc(100_000, 9));
  const all = Buffer.concat([a, b, a]);
  for (const step of [1, 3, 7, 4096, all.length]) {
    const f = new PacketFramer();
    const out: Buffer[] = [];
    for (let i = 0; i < all.length; i += step) {
      f.push(all.subarray(i, i + step));
      for (let p = f.next(); p; p = f.next()) out.push(Buffer.from(p));
    }
    t.deepEqual(out.map((p) => p.length), [4, 100_001, 4], `step ${step}`);
    t.is(out[1][0], 6);
    t.true(out[1].subarray(1).equals(Buffer.alloc(100_000, 9)));
  }
});

test('the framer copies what it is given: a chunk reused after push leaves the packets intact', (t) => {
  const a = packet(6, Buffer.alloc(70_000, 1));
  const b = packet(17, Buffer.from('xyz'));
  const all = Buffer.concat([a, b]);
  const f = new PacketFramer();
  const reused = Buffer.alloc(4096);
  const out: Buffer[] = [];
  for (let i = 0; i < all.length; i += reused.length) {
    const n = all.copy(reused, 0, i, i + reused.length);
    f.push(reused.subarray(0, n));
    reused.fill(0xee);
    for (let p = f.next(); p; p = f.next()) out.push(p);
  }
  t.is(out.length, 2);
  t.true(out[0].equals(a.subarray(4)));
  t.true(out[1].equals(b.subarray(4)));
});

test('the framer refuses zero and oversized lengths', (t) => {
  const f = new PacketFramer();
  f.push(Buffer.from([0, 0, 0, 0, 1]));
  t.throws(() => f.next(), { instanceOf: BadMessage });
  const g = new PacketFramer();
  g.push(Buffer.from([0x10, 0, 0, 0]));
  t.throws(() => g.next(), { instanceOf: BadMessage });
});

test('offsets above 2^53 are refused, not rounded', (t) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(2n ** 60n);
  t.throws(() => new Reader(b).u64(), { instanceOf: BadMessage });
  b.writeBigUInt64BE(5n * 2n ** 30n);
  t.is(new Reader(b).u64(), 5 * 2 ** 30);
});

test('VERSION advertises limits, posix-rename and statvfs but no hardlink', (t) => {
  const v = encode.version().toString('latin1');
  t.true(v.includes('limits@openssh.com'));
  t.true(v.includes('posix-rename@openssh.com'));
  t.true(v.includes('statvfs@openssh.com'));
  t.false(v.includes('hardlink'));
});

test('virtual paths are clamped at the root', (t) => {
  for (const [input, want] of [['.', '/'], ['..', '/'], ['/../../etc', '/etc'], ['a/../../b', '/b'], ['//x//y/', '/x/y'], ['', '/']]) t.is(virtualPath(input), want, input);
});

test('every ErrorCode has an SFTP status', (t) => {
  for (const c of ERROR_CODES) t.true(Number.isInteger(SFTP_STATUS[c]), c);
});

test('longName looks like ls -l', (t) => {
  t.regex(longName('a.txt', { size: 12, permissions: 0o100444, mtime: Math.floor(Date.now() / 1000) }, 'handoff'), /^-r--r--r-- +1 handoff +handoff +12 \w{3} [ \d]\d \d\d:\d\d a\.txt$/);
});
