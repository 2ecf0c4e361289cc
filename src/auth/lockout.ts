import type { Database } from '../db/Database.js';

export interface LockoutPolicy {
  attempts: number;
  windowSeconds: number;
  banSeconds: number;
  safelist: string[];
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
  constructor(private readonly db: Database, private readonly policy: LockoutPolicy) {}

  private safe(ip: string): boolean {
    const v4 = ip.startsWith('::ffff:') ? ip.slice(7) : ip;
    return this.policy.safelist.includes(v4);
  }

  /**
   * An IP ban refuses everything from that address. A username ban refuses that name only from
   * addresses that have failed themselves in the window: a distributed guess at one account is
   * stopped, while its owner on a clean address can still log in (no lock-out-the-victim DoS).
   */
  async isBanned(ip: string, username?: string, now = Date.now()): Promise<boolean> {
    if (this.safe(ip)) return false;
    const keys = [ipKey(ip)];
    if (username) keys.push(`user:${username.slice(0, 128)}`);
    const rows = await this.db.query<{ key: string; score: number; window_start: number; banned_until: number | null }>(
      `SELECT key, score, window_start, banned_until FROM auth_failures WHERE key IN (${keys.map(() => '?').join(',')})`,
      keys,
    );
    const ipRow = rows.find((r) => r.key === keys[0]);
    if (ipRow?.banned_until && ipRow.banned_until > now) return true;
    const userRow = rows.find((r) => r.key !== keys[0]);
    const ipHasFailed = Boolean(ipRow && now - ipRow.window_start <= this.policy.windowSeconds * 1000 && ipRow.score > 0);
    return Boolean(userRow?.banned_until && userRow.banned_until > now && ipHasFailed);
  }

  /** `weight` 2 for an unknown username (a guess at accounts), 1 for a wrong secret. */
  async recordFailure(ip: string, username: string | undefined, weight = 1, now = Date.now()): Promise<void> {
    if (this.safe(ip)) return;
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
        if (score >= this.policy.attempts && !(bannedUntil !== null && bannedUntil > now)) {
          bannedUntil = now + this.policy.banSeconds * 1000 * 2 ** Math.min(strikes, 10);
          strikes++;
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

  list(): Promise<Array<{ key: string; score: number; banned_until: number | null; strikes: number }>> {
    return this.db.query('SELECT key, score, banned_until, strikes FROM auth_failures ORDER BY updated_at DESC');
  }

  async clear(key?: string): Promise<number> {
    const r = key ? await this.db.run('DELETE FROM auth_failures WHERE key = ?', [key]) : await this.db.run('DELETE FROM auth_failures');
    return r.changes;
  }
}
