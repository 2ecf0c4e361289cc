import type { Queryable } from '../Database.js';
import type { UploadRow } from './rows.js';

export class UploadsRepo {
  constructor(private readonly db: Queryable) {}

  byId(id: string): Promise<UploadRow | undefined> {
    return this.db.get<UploadRow>('SELECT * FROM uploads WHERE id = ?', [id]);
  }

  forEvent(eventId: string): Promise<UploadRow[]> {
    return this.db.query<UploadRow>('SELECT * FROM uploads WHERE event_id = ?', [eventId]);
  }

  async insert(u: Omit<UploadRow, 'offset_bytes' | 'updated_at' | 'completed_at'>): Promise<void> {
    await this.db.run(
      'INSERT INTO uploads (id, event_id, path, length, reserved, sha256, protocol, created_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      [u.id, u.event_id, u.path, u.length, u.reserved, u.sha256, u.protocol, u.created_by, u.created_at, u.created_at],
    );
  }

  async setOffset(id: string, offset: number, now: number): Promise<void> {
    await this.db.run('UPDATE uploads SET offset_bytes = ?, updated_at = ? WHERE id = ?', [offset, now, id]);
  }

  /** A finished tus upload keeps its row so a client that lost the last answer learns it is done. */
  async complete(id: string, length: number, now: number): Promise<void> {
    await this.db.run('UPDATE uploads SET offset_bytes = ?, length = ?, reserved = 0, completed_at = ?, updated_at = ? WHERE id = ?', [length, length, now, now, id]);
  }

  async remove(id: string): Promise<void> {
    await this.db.run('DELETE FROM uploads WHERE id = ?', [id]);
  }
}
