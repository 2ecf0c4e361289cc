import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DomainEvent } from '../../src/cache/events.js';
import { LiveTransfers } from '../../src/cache/live.js';

test('file.progress is throttled per file and the latest value always arrives', async (t) => {
  const seen: DomainEvent[] = [];
  const live = new LiveTransfers((e) => seen.push(e), 250);
  live.start('ev', 'a', 1000, 0);
  live.start('ev', 'b', 1000, 0);
  for (let i = 1; i <= 100; i++) {
    live.progress('ev', 'a', i * 10);
    live.progress('ev', 'b', i * 5);
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
  live.end('ev', 'a');
  live.progress('ev', 'a', 5); // after the end: nothing
  live.end('ev', 'b');
  await sleep(300);
  t.is(seen.filter((e) => 'path' in e && e.path === 'a').length, 2);
  t.deepEqual(live.list(), []);
});

test('without a callback LiveTransfers only tracks bytes', (t) => {
  const live = new LiveTransfers();
  live.start('ev', 'a', null, 0);
  live.progress('ev', 'a', 42);
  t.is(live.bytes('ev', 'a'), 42);
  t.is(live.countForEvent('ev'), 1);
});
