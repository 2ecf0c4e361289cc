import test from 'ava';
import { AlignedBuffers } from '../../src/shared/alignedBuffers.js';

const KiB = 1024;

test('pieces are handed out once each, then ordinary buffers, and only pieces come back', (t) => {
  const pool = new AlignedBuffers([{ size: 256 * KiB, count: 2 }, { size: 64 * KiB, count: 1 }]);
  const a = pool.take(256 * KiB);
  const b = pool.take(256 * KiB);
  t.not(a, b);
  t.is(pool.idle(256 * KiB), 0);
  const extra = pool.take(256 * KiB);
  t.is(extra.length, 256 * KiB);
  pool.give(extra);
  t.is(pool.idle(256 * KiB), 0, 'a fallback buffer is not kept');
  pool.give(a);
  t.is(pool.take(256 * KiB), a);
  t.is(pool.take(64 * KiB).length, 64 * KiB);
  t.is(pool.take(100).length, 100, 'a size the pool does not cut');
});

test('pieces sit at page-multiple offsets of one page-aligned memory, without overlapping', (t) => {
  const pool = new AlignedBuffers([{ size: 1024 * KiB, count: 2 }, { size: 256 * KiB, count: 3 }]);
  const pieces = [pool.take(1024 * KiB), pool.take(1024 * KiB), pool.take(256 * KiB), pool.take(256 * KiB), pool.take(256 * KiB)];
  const memory = pieces[0].buffer;
  t.true(pieces.every((p) => p.buffer === memory && p.byteOffset % 4096 === 0));
  pieces.forEach((p, i) => p.fill(i + 1));
  pieces.forEach((p, i) => t.true(p.every((byte) => byte === i + 1), `piece ${i} kept its own bytes`));
});

test('a size that is not a multiple of 4 KiB is refused', (t) => {
  t.throws(() => new AlignedBuffers([{ size: 1000, count: 1 }]), { message: /multiple of 4 KiB/ });
});
