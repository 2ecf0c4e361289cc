import type { Queryable } from '../Database.js';

export interface AdminSessionRow {
  id_hash: string;
  user_id: number;
  cred_tag: string;
  csrf_token: string;
  created_at: number;
  last_seen_at: number;
  expires_at: number;
  flash: string | null;
  ip: string | null;
}

/** Storage of admin panel sessions (migration 004); the policy (timeouts, rotation) lives in src/admin/sessions.ts. */
export class AdminSessionsRepo {
  constructor(private readonly db: Queryable) {}

  byHash(idHash: string): Promise<AdminSessionRow | undefined> {
    return this.db.get<AdminSessionRow>('SELECT * FROM admin_sessions WHERE id_hash = ?', [idHash]);
  }

  async insert(r: AdminSessionRow): Promise<void> {
    await this.db.run(
      'INSERT INTO admin_sessions (id_hash, user_id, cred_tag, csrf_token, created_at, last_seen_at, expires_at, flash, ip) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
      [r.id_hash, r.user_id, r.cred_tag, r.csrf_token, r.created_at, r.last_seen_at, r.expires_at, r.flash, r.ip],
    );
  }

  async touch(idHash: string, now: number): Promise<void> {
    await this.db.run('UPDATE admin_sessions SET last_seen_at = ? WHERE id_hash = ?', [now, idHash]);
  }

  async retag(idHash: string, credTag: string): Promise<void> {
    await this.db.run('UPDATE admin_sessions SET cred_tag = ? WHERE id_hash = ?', [credTag, idHash]);
  }

  async setFlash(idHash: string, flash: string | null): Promise<void> {
    await this.db.run('UPDATE admin_sessions SET flash = ? WHERE id_hash = ?', [flash, idHash]);
  }

  async remove(idHash: string): Promise<void> {
    await this.db.run('DELETE FROM admin_sessions WHERE id_hash = ?', [idHash]);
  }

  async removeForUser(userId: number, exceptHash: string | null): Promise<number> {
    const r = await this.db.run('DELETE FROM admin_sessions WHERE user_id = ? AND id_hash <> ?', [userId, exceptHash ?? '']);
    return r.changes;
  }

  /** Drops sessions past their absolute limit or idle for too long. */
  async sweep(now: number, idleBefore: number): Promise<number> {
    const r = await this.db.run('DELETE FROM admin_sessions WHERE expires_at <= ? OR last_seen_at <= ?', [now, idleBefore]);
    return r.changes;
  }

  /** A named server secret, created once (first caller wins) and shared by every instance. */
  async secret(name: string, make: () => string): Promise<string> {
    const read = () => this.db.get<{ value: string }>('SELECT value FROM secrets WHERE name = ?', [name]);
    const found = await read();
    if (found) return found.value;
    await this.db.run('INSERT INTO secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING', [name, make()]);
    return (await read())!.value;
  }
}
