import type { Queryable } from '../Database.js';
import type { Role, UserRow } from './rows.js';

/** An API token as listed (never the hash). */
export interface ApiTokenRow {
  id: number;
  user_id: number;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

export class UsersRepo {
  constructor(private readonly db: Queryable) {}

  byName(name: string): Promise<UserRow | undefined> {
    return this.db.get<UserRow>('SELECT * FROM users WHERE name = ?', [name]);
  }

  byId(id: number): Promise<UserRow | undefined> {
    return this.db.get<UserRow>('SELECT * FROM users WHERE id = ?', [id]);
  }

  list(page?: { limit: number; offset: number }): Promise<UserRow[]> {
    return page
      ? this.db.query<UserRow>('SELECT * FROM users ORDER BY name LIMIT ? OFFSET ?', [page.limit, page.offset])
      : this.db.query<UserRow>('SELECT * FROM users ORDER BY name');
  }

  async count(): Promise<number> {
    return (await this.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM users'))?.n ?? 0;
  }

  async setLimits(id: number, quotaBytes: number | null, maxTtlMs: number | null, now: number): Promise<void> {
    await this.db.run('UPDATE users SET quota_bytes = ?, max_ttl_ms = ?, updated_at = ? WHERE id = ?', [quotaBytes, maxTtlMs, now, id]);
  }

  tokens(userId: number): Promise<ApiTokenRow[]> {
    return this.db.query<ApiTokenRow>('SELECT id, user_id, created_at, last_used_at, revoked_at FROM api_tokens WHERE user_id = ? ORDER BY created_at DESC, id DESC', [userId]);
  }

  async revokeToken(userId: number, tokenId: number, now: number): Promise<number> {
    const r = await this.db.run('UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at IS NULL', [now, tokenId, userId]);
    return r.changes;
  }

  async insert(name: string, role: Role, passwordHash: string | null, now: number): Promise<number> {
    const r = await this.db.run('INSERT INTO users (name, role, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?)', [
      name, role, passwordHash, now, now,
    ]);
    return r.lastId;
  }

  async setPassword(id: number, passwordHash: string, now: number): Promise<void> {
    await this.db.run('UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?', [passwordHash, now, id]);
  }

  async setDisabled(id: number, disabled: boolean, now: number): Promise<void> {
    await this.db.run('UPDATE users SET disabled = ?, updated_at = ? WHERE id = ?', [disabled ? 1 : 0, now, id]);
  }

  async remove(id: number): Promise<number> {
    return (await this.db.run('DELETE FROM users WHERE id = ?', [id])).changes;
  }

  async insertToken(userId: number, tokenHash: string, now: number): Promise<void> {
    await this.db.run('INSERT INTO api_tokens (user_id, token_hash, created_at) VALUES (?, ?, ?)', [userId, tokenHash, now]);
  }

  byTokenHash(tokenHash: string): Promise<(UserRow & { token_id: number }) | undefined> {
    return this.db.get<UserRow & { token_id: number }>(
      `SELECT u.*, t.id AS token_id FROM api_tokens t JOIN users u ON u.id = t.user_id
       WHERE t.token_hash = ? AND t.revoked_at IS NULL`,
      [tokenHash],
    );
  }

  async addSshKey(userId: number, publicKey: string, fingerprint: string, now: number): Promise<void> {
    await this.db.run('INSERT INTO user_ssh_keys (user_id, public_key, fingerprint, created_at) VALUES (?, ?, ?, ?)', [userId, publicKey, fingerprint, now]);
  }

  async sshKeys(userId: number): Promise<Array<{ public_key: string; fingerprint: string; created_at: number }>> {
    return this.db.query('SELECT public_key, fingerprint, created_at FROM user_ssh_keys WHERE user_id = ? ORDER BY id', [userId]);
  }

  async removeSshKey(userId: number, fingerprint: string): Promise<number> {
    return (await this.db.run('DELETE FROM user_ssh_keys WHERE user_id = ? AND fingerprint = ?', [userId, fingerprint])).changes;
  }
}
