import type { Queryable } from '../Database.js';
import type { AccessLogRow } from './rows.js';

export type AccessEntry = Omit<AccessLogRow, 'id'>;

export class AccessLogRepo {
  constructor(private readonly db: Queryable) {}

  async insert(e: AccessEntry): Promise<void> {
    await this.db.run('INSERT INTO access_log (event_id, at, who, protocol, action, path, bytes, ip) VALUES (?, ?, ?, ?, ?, ?, ?, ?)', [
      e.event_id, e.at, e.who, e.protocol, e.action, e.path, e.bytes, e.ip,
    ]);
  }

  forEvent(eventId: string, limit: number): Promise<AccessLogRow[]> {
    return this.db.query<AccessLogRow>('SELECT * FROM access_log WHERE event_id = ? ORDER BY at, id LIMIT ?', [eventId, limit]);
  }
}
