import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ipKey, Lockout, lockoutKeyOf } from '../../src/auth/lockout.js';
import { migrate } from '../../src/db/migrate.js';
import { SqliteDatabase } from '../../src/db/sqlite.js';

test('bans grow for repeat offenders, usernames have their own threshold, the safelist takes CIDR ranges', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'handoff-lockout-unit-'));
  const db = await SqliteDatabase.open(join(dir, 'db'));
  try {
    await migrate(db);
    const l = new Lockout(db, { attempts: 3, userAttempts: 5, windowSeconds: 60, banSeconds: 10, safelist: ['10.1.0.0/16', '::1'] });
    let now = 1_000_000;
    for (let i = 0; i < 3; i++) await l.recordFailure('192.0.2.7', 'eve', 1, now);
    t.true(await l.isBanned('192.0.2.7', undefined, now));
    t.false(await l.isBanned('192.0.2.8', 'eve', now), 'three failures do not ban the name');
    const first = (await l.list()).find((e) => e.key === 'ip:192.0.2.7')!;
    t.is(first.bannedUntil! - now, 10_000);
    now += 11_000; // ban over, still inside the scoring window: the next failure bans again, twice as long
    t.false(await l.isBanned('192.0.2.7', undefined, now));
    await l.recordFailure('192.0.2.7', undefined, 1, now);
    const second = (await l.list()).find((e) => e.key === 'ip:192.0.2.7')!;
    t.is(second.bannedUntil! - now, 20_000);
    t.is(second.strikes, 2);
    for (let i = 0; i < 2; i++) await l.recordFailure('198.51.100.1', 'eve', 1, now);
    t.false(await l.isBanned('203.0.113.9', 'eve', now), 'a clean address is not locked out by a banned name (the owner can still log in)');
    await l.recordFailure('203.0.113.9', 'other', 1, now);
    t.true(await l.isBanned('203.0.113.9', 'eve', now), 'five failures over many addresses ban the name for addresses that fail too');
    for (let i = 0; i < 10; i++) await l.recordFailure('10.1.2.3', 'x', 1, now);
    t.false(await l.isBanned('10.1.2.3', undefined, now), 'safelisted range never scored');
    t.false(await l.isBanned('::ffff:10.1.9.9', undefined, now));
    t.is(ipKey('2001:db8:1:2:3:4:5:6'), 'ip6:2001:db8:1:2', 'IPv6 scored per /64');
    t.is(lockoutKeyOf('192.0.2.7'), 'ip:192.0.2.7');
    t.is(lockoutKeyOf('eve'), 'user:eve');
    await l.recordFailure('192.0.2.50', 'typo', 1, now);
    t.is(await l.pruneIdle(now + 61_000), 5, 'idle rows without a ban (three addresses, two names) go after the window');
    t.true((await l.list()).some((e) => e.key === 'ip:192.0.2.7'), 'a key with strikes stays');
    t.is(await l.clear('192.0.2.7'), 1);
    t.false(await l.isBanned('192.0.2.7', undefined, now));
  } finally {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  }
});
