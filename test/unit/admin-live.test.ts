import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { DomainBus, type DomainEvent } from '../../src/cache/events.js';
import { LiveTransfers } from '../../src/cache/live.js';

test('file.progress is throttled per file and the latest value always arrives', async (t) => {
  const seen: DomainEvent[] = [];
  const bus = new DomainBus();
  bus.on((e) => seen.push(e));
  const live = new LiveTransfers(bus, 250);
  live.start('ev', 'a', 'ua', 1000, 0);
  live.start('ev', 'b', 'ub', 1000, 0);
  for (let i = 1; i <= 100; i++) {
    live.progress('ev', 'a', 'ua', i * 10);
    live.progress('ev', 'b', 'ub', i * 5);
  }
  // One immediate emission per file; the rest are folded into one trailing emission each.
  t.is(seen.filter((e) => e.type === 'file.progress' && e.path === 'a').length, 1);
  t.is(seen.filter((e) => e.type === 'file.progress' && e.path === 'b').length, 1);
  await sleep(400);
  const a = seen.filter((e): e is Extract<DomainEvent, { type: 'file.progress' }> => e.type === 'file.progress' && e.path === 'a');
  t.is(a.length, 2);
  t.is(a[1].bytes, 1000);
  t.is(a[1].size, 1000);
  t.true(a[1].at - a[0].at >= 240, 'at most 4 a second');
  t.deepEqual(live.list().map((x) => x.path).sort(), ['a', 'b']);
  live.end('ev', 'a', 'ua', 'complete');
  live.progress('ev', 'a', 'ua', 5); // after the end: nothing
  live.end('ev', 'b', 'ub', 'complete');
  await sleep(300);
  t.is(seen.filter((e) => e.type === 'file.progress' && e.path === 'a').length, 2);
  t.deepEqual(live.list(), []);
});

test('progress of another upload into the same path is ignored, and followers are signalled', (t) => {
  const live = new LiveTransfers(new DomainBus());
  const signals: string[] = [];
  live.subscribe('ev', 'a', (s) => signals.push(`${s.kind}:${s.uploadId}`));
  live.start('ev', 'a', 'u1', null, 0);
  live.progress('ev', 'a', 'u1', 42);
  live.progress('ev', 'a', 'u2', 99);
  t.is(live.bytes('ev', 'a'), 42);
  t.is(live.countForEvent('ev'), 1);
  live.end('ev', 'a', 'u1', 'failed');
  t.deepEqual(signals, ['progress:u1', 'progress:u1', 'end:u1']);
});
