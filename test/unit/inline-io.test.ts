import test from 'ava';
import { InlineIo } from '../../src/shared/inlineIo.js';

/** A call that takes at least `ms` of wall time (a stand-in for a blocking fs call that stalls). */
const slow = (ms: number) => () => {
  const end = performance.now() + ms;
  while (performance.now() < end);
};
const fast = () => 1;

test('a stalled call sends calls away for the back-off, doubled while the probing calls stall too, reset by one that does not', (t) => {
  let clock = 1_000_000;
  const io = new InlineIo(2, 1_000, 4_000, () => clock);
  io.run(fast);
  t.true(io.allowed);

  io.run(slow(5));
  t.false(io.allowed);
  clock += 999;
  t.false(io.allowed);
  clock += 1;
  t.true(io.allowed, 'allowed again after 1 s');

  io.run(slow(5)); // the probe stalls too: 2 s
  clock += 1_999;
  t.false(io.allowed);
  clock += 1;
  t.true(io.allowed);

  io.run(slow(5)); // 4 s
  clock += 4_000;
  t.true(io.allowed);
  io.run(slow(5)); // capped at 4 s
  clock += 3_999;
  t.false(io.allowed);
  clock += 1;
  t.true(io.allowed);

  io.run(fast); // the disk recovered: the next stall costs 1 s again
  io.run(slow(5));
  clock += 1_000;
  t.true(io.allowed);
});

test('without a maximum the back-off stays fixed (upload writes)', (t) => {
  let clock = 0;
  const io = new InlineIo(2, 10_000, undefined, () => clock);
  io.run(slow(5));
  clock += 10_000;
  t.true(io.allowed);
  io.run(slow(5));
  clock += 10_000;
  t.true(io.allowed, 'still 10 s after a second stall in a row');
});

test('a call that throws is still timed, and its error reaches the caller', (t) => {
  let clock = 0;
  const io = new InlineIo(2, 1_000, 1_000, () => clock);
  t.throws(() => io.run(() => {
    slow(5)();
    throw new Error('EIO');
  }), { message: 'EIO' });
  t.false(io.allowed);
  clock += 1_000;
  t.true(io.allowed);
});
