import type { Queryable } from '../Database.js';
import type { Role, UserRow } from './rows.js';

export class UsersRepo {
  constructor(private readonly db: Queryable) {}

  byName(name: string): Promise<UserRow | undefined> {
    return this.db.get<UserRow>('SELECT * FROM users WHERE name = ?', [name]);
  }

  byId(id: number): Promise<UserRow | undefined> {
    return this.db.get<UserRow>('SELECT * FROM users WHERE id = ?', [id]);
  }

  list(): Promise<UserRow[]> {
    return this.db.query<UserRow>('SELECT * FROM users ORDER BY name');
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
