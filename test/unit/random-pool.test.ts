import test from 'ava';
import { fillRandom, randomBytesPooled } from '../../src/shared/randomPool.js';

test('pooled random bytes are never handed out twice, across refills and odd sizes', (t) => {
  const seen = new Set<string>();
  // 3 x 4 KiB worth in 13-byte pieces: every refill boundary falls inside a request at least once.
  for (let i = 0; i < 1000; i++) {
    const b = randomBytesPooled(13);
    t.is(b.length, 13);
    const hex = b.toString('hex');
    t.false(seen.has(hex), `repeat at ${i}`);
    seen.add(hex);
  }
  // Roughly uniform: about half the bits set (13,000 bytes; a stuck or zeroed pool fails this).
  let ones = 0;
  for (const hex of seen) for (const byte of Buffer.from(hex, 'hex')) ones += byte.toString(2).replace(/0/g, '').length;
  const ratio = ones / (1000 * 13 * 8);
  t.true(ratio > 0.47 && ratio < 0.53, `bit ratio ${ratio}`);
});

test('fillRandom writes only the range it is given; large requests bypass the pool', (t) => {
  const target = Buffer.alloc(64, 0xaa);
  fillRandom(target, 10, 20);
  t.true(target.subarray(0, 10).every((b) => b === 0xaa));
  t.true(target.subarray(30).every((b) => b === 0xaa));
  t.false(target.subarray(10, 30).every((b) => b === 0xaa));
  const big = Buffer.alloc(8192);
  fillRandom(big, 0, big.length);
  t.false(big.subarray(4096).every((b) => b === 0));
});
