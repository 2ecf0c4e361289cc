import type { Queryable } from '../Database.js';
import type { RecipientRow } from './rows.js';

export class RecipientsRepo {
  constructor(private readonly db: Queryable) {}

  byUsername(username: string): Promise<RecipientRow | undefined> {
    return this.db.get<RecipientRow>('SELECT * FROM recipients WHERE username = ?', [username]);
  }

  byId(id: number): Promise<RecipientRow | undefined> {
    return this.db.get<RecipientRow>('SELECT * FROM recipients WHERE id = ?', [id]);
  }

  byName(eventId: string, name: string): Promise<RecipientRow | undefined> {
    return this.db.get<RecipientRow>('SELECT * FROM recipients WHERE event_id = ? AND name = ?', [eventId, name]);
  }

  forEvent(eventId: string): Promise<RecipientRow[]> {
    return this.db.query<RecipientRow>('SELECT * FROM recipients WHERE event_id = ? ORDER BY created_at, id', [eventId]);
  }

  async insert(r: Omit<RecipientRow, 'id' | 'downloads' | 'revoked_at' | 'last_access_at' | 'expired_at'>): Promise<number> {
    const res = await this.db.run(
      `INSERT INTO recipients (event_id, name, username, password_hash, ssh_public_key, expires_at, max_downloads, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      [r.event_id, r.name, r.username, r.password_hash, r.ssh_public_key, r.expires_at, r.max_downloads, r.created_at],
    );
    return res.lastId;
  }

  async revoke(id: number, now: number): Promise<void> {
    await this.db.run('UPDATE recipients SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL', [now, id]);
  }

  async setPassword(id: number, passwordHash: string): Promise<void> {
    await this.db.run('UPDATE recipients SET password_hash = ? WHERE id = ?', [passwordHash, id]);
  }

  /** Counts one download atomically; false when the recipient's limit is already reached. */
  async countDownload(id: number, now: number): Promise<boolean> {
    const r = await this.db.run(
      'UPDATE recipients SET downloads = downloads + 1, last_access_at = ? WHERE id = ? AND (max_downloads IS NULL OR downloads < max_downloads)',
      [now, id],
    );
    return r.changes === 1;
  }
}
