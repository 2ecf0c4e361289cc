import test from 'ava';
import { BufferPool } from '../../src/shared/bufferPool.js';

test('a buffer given back is handed out again, by exact size, once', (t) => {
  const pool = new BufferPool(4 * 1024 * 1024);
  const a = pool.take(1024 * 1024);
  pool.give(a);
  t.is(pool.take(512 * 1024).length, 512 * 1024, 'another size is a new buffer');
  t.is(pool.take(1024 * 1024), a);
  t.not(pool.take(1024 * 1024), a, 'never to two takers');
  t.is(pool.idleBytes, 0);
});

test('idle buffers never exceed the cap, whatever the peak', (t) => {
  const pool = new BufferPool(2 * 1024 * 1024);
  const many = Array.from({ length: 10 }, () => pool.take(1024 * 1024));
  for (const b of many) pool.give(b);
  t.is(pool.idleBytes, 2 * 1024 * 1024);
});
