import { BlockList, isIP } from 'node:net';
import type { Database } from '../db/Database.js';
import type { Logger } from '../shared/log.js';

export interface LockoutPolicy {
  /** Score per IP (or IPv6 /64) that bans it. */
  attempts: number;
  /**
   * Score per username that bans the name from every address. Higher than `attempts`: a name ban
   * also locks out its rightful owner, so it is only the brake on a guessing attack spread over
   * many addresses (OWASP ASVS 2.2.1: at most 100 failures per hour per account).
   */
  userAttempts: number;
  windowSeconds: number;
  banSeconds: number;
  /** Addresses or CIDR ranges never scored (monitoring, the office NAT). */
  safelist: string[];
}

export interface LockoutEntry {
  key: string;
  score: number;
  windowStart: number;
  bannedUntil: number | null;
  strikes: number;
  updatedAt: number;
}

function plainIp(ip: string): string {
  return ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;
}

/** `1.2.3.4`, `10.0.0.0/8`, `2001:db8::/32` into one BlockList; a bad entry is refused at start-up. */
export function safelistOf(entries: string[]): BlockList {
  const list = new BlockList();
  for (const e of entries) {
    const [addr, bits] = e.split('/');
    const family = isIP(addr);
    if (!family || (bits !== undefined && !/^\d{1,3}$/.test(bits))) throw new Error(`auth.lockout.safelist: ${e} is not an address or CIDR range`);
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (bits === undefined) list.addAddress(addr, type);
    else list.addSubnet(addr, Number(bits), type);
  }
  return list;
}

/** What `handoff lockout clear KEY` accepts: a stored key, an address, or a username. */
export function lockoutKeyOf(text: string): string {
  if (/^(ip|ip6|user):/.test(text)) return text;
  return isIP(text) ? ipKey(text) : `user:${text}`;
}

/** An IPv6 client is scored by its /64, since one host can own the whole prefix. */
export function ipKey(ip: string): string {
  const v4 = ip.startsWith('::ffff:') ? ip.slice(7) : ip;
  if (!v4.includes(':')) return `ip:${v4}`;
  return `ip6:${v4.split(':').slice(0, 4).join(':')}`;
}

/**
 * Failed-attempt scoring per IP and per username, shared by every protocol and kept in the
 * database so a restart does not forget it. A key is banned once its score in the window reaches
 * the threshold; each repeat ban doubles in length.
 */
export class Lockout {
  private readonly safelist: BlockList;

  constructor(private readonly db: Database, private readonly policy: LockoutPolicy, private readonly log?: Logger) {
    this.safelist = safelistOf(policy.safelist);
  }

  private safe(ip: string): boolean {
    const v = plainIp(ip);
    const family = isIP(v);
    return family !== 0 && this.safelist.check(v, family === 4 ? 'ipv4' : 'ipv6');
  }

  /**
   * An IP ban refuses everything from that address. A username ban refuses that name only from
   * addresses that have failed themselves in the window: a distributed guess at one account is
   * stopped, while its owner on a clean address can still log in (no lock-out-the-victim DoS).
   */
  /**
   * Address/name pairs with no failure on record, for one second: a WebDAV client sending Basic on
   * every request then costs no lockout query each time. Any failure or clear in this process drops
   * the whole memo; another node sees a new ban at most a second late.
   */
  private readonly clean = new Map<string, number>();

  async isBanned(ip: string, username?: string, now = Date.now()): Promise<boolean> {
    if (this.safe(ip)) return false;
    const keys = [ipKey(ip)];
    if (username) keys.push(`user:${username.slice(0, 128)}`);
    const memoKey = keys.join('\u0000');
    const until = this.clean.get(memoKey);
    if (until !== undefined && until > now) return false;
    const rows = await this.db.query<{ key: string; score: number; window_start: number; banned_until: number | null }>(
      `SELECT key, score, window_start, banned_until FROM auth_failures WHERE key IN (${keys.map(() => '?').join(',')})`,
      keys,
    );
    if (rows.length === 0) {
      if (this.clean.size > 10_000) this.clean.clear();
      this.clean.set(memoKey, now + 1000);
      return false;
    }
    const ipRow = rows.find((r) => r.key === keys[0]);
    if (ipRow?.banned_until && ipRow.banned_until > now) return true;
    const userRow = rows.find((r) => r.key !== keys[0]);
    const ipHasFailed = Boolean(ipRow && now - ipRow.window_start <= this.policy.windowSeconds * 1000 && ipRow.score > 0);
    return Boolean(userRow?.banned_until && userRow.banned_until > now && ipHasFailed);
  }

  /** `weight` 2 for an unknown username (a guess at accounts), 1 for a wrong secret. */
  async recordFailure(ip: string, username: string | undefined, weight = 1, now = Date.now()): Promise<void> {
    if (this.safe(ip)) return;
    this.clean.clear();
    const windowMs = this.policy.windowSeconds * 1000;
    const keys = [ipKey(ip)];
    if (username) keys.push(`user:${username.slice(0, 128)}`);
    await this.db.transaction(async (tx) => {
      for (const key of keys) {
        const row = await tx.get<{ score: number; window_start: number; strikes: number; banned_until: number | null }>(
          'SELECT score, window_start, strikes, banned_until FROM auth_failures WHERE key = ?',
          [key],
        );
        const fresh = !row || now - row.window_start > windowMs;
        const score = (fresh ? 0 : row.score) + weight;
        const windowStart = fresh ? now : row.window_start;
        let strikes = row?.strikes ?? 0;
        let bannedUntil = row?.banned_until ?? null;
        const threshold = key.startsWith('user:') ? this.policy.userAttempts : this.policy.attempts;
        if (score >= threshold && !(bannedUntil !== null && bannedUntil > now)) {
          // Repeat offenders wait twice as long each time (capped at 2^10 × banSeconds).
          bannedUntil = now + this.policy.banSeconds * 1000 * 2 ** Math.min(strikes, 10);
          strikes++;
          this.log?.warn({ key, score, strikes, bannedUntil: new Date(bannedUntil).toISOString() }, 'lockout: banned after repeated failed logins');
        }
        await tx.run(
          `INSERT INTO auth_failures (key, score, window_start, banned_until, strikes, updated_at) VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (key) DO UPDATE SET score = excluded.score, window_start = excluded.window_start,
             banned_until = excluded.banned_until, strikes = excluded.strikes, updated_at = excluded.updated_at`,
          [key, score, windowStart, bannedUntil, strikes, now],
        );
      }
    });
  }

  /** Every scored key, banned ones first. */
  async list(): Promise<LockoutEntry[]> {
    const rows = await this.db.query<{ key: string; score: number; window_start: number; banned_until: number | null; strikes: number; updated_at: number }>(
      'SELECT key, score, window_start, banned_until, strikes, updated_at FROM auth_failures ORDER BY (banned_until IS NULL), banned_until DESC, updated_at DESC',
    );
    return rows.map((r) => ({ key: r.key, score: r.score, windowStart: r.window_start, bannedUntil: r.banned_until, strikes: r.strikes, updatedAt: r.updated_at }));
  }

  /**
   * Rows that never led to a ban and whose window has passed carry nothing (the next failure starts
   * a fresh window), so a spray of made-up usernames does not pile up until the audit period ends.
   */
  async pruneIdle(now = Date.now()): Promise<number> {
    const r = await this.db.run('DELETE FROM auth_failures WHERE strikes = 0 AND banned_until IS NULL AND updated_at < ?', [now - this.policy.windowSeconds * 1000]);
    return r.changes;
  }

  /** Forgets one key (address, /64 or username) or, without one, everything. Returns how many rows went. */
  async clear(key?: string): Promise<number> {
    const r = key ? await this.db.run('DELETE FROM auth_failures WHERE key = ?', [lockoutKeyOf(key)]) : await this.db.run('DELETE FROM auth_failures');
    if (r.changes) this.log?.info({ key: key ?? '*', rows: r.changes }, 'lockout cleared');
    return r.changes;
  }
}
