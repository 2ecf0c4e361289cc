import type { Queryable } from '../Database.js';
import type { EventRow } from './rows.js';

export class EventsRepo {
  constructor(private readonly db: Queryable) {}

  byId(id: string): Promise<EventRow | undefined> {
    return this.db.get<EventRow>('SELECT * FROM events WHERE id = ?', [id]);
  }

  list(ownerId: number | null, limit: number, offset: number): Promise<EventRow[]> {
    return ownerId === null
      ? this.db.query<EventRow>('SELECT * FROM events ORDER BY created_at DESC, id LIMIT ? OFFSET ?', [limit, offset])
      : this.db.query<EventRow>('SELECT * FROM events WHERE owner_id = ? ORDER BY created_at DESC, id LIMIT ? OFFSET ?', [ownerId, limit, offset]);
  }

  async insert(e: Omit<EventRow, 'closed_at' | 'purged_at' | 'used_bytes' | 'reserved_bytes' | 'completed_at'>): Promise<void> {
    await this.db.run('INSERT INTO events (id, owner_id, title, created_at, expires_at, quota_bytes) VALUES (?, ?, ?, ?, ?, ?)', [
      e.id, e.owner_id, e.title, e.created_at, e.expires_at, e.quota_bytes,
    ]);
  }

  async update(id: string, fields: Partial<Pick<EventRow, 'title' | 'expires_at' | 'closed_at' | 'purged_at' | 'quota_bytes'>>): Promise<void> {
    const keys = Object.keys(fields) as Array<keyof typeof fields>;
    if (keys.length === 0) return;
    await this.db.run(`UPDATE events SET ${keys.map((k) => `${k} = ?`).join(', ')} WHERE id = ?`, [...keys.map((k) => fields[k] ?? null), id]);
  }

  /** Conditional reservation: succeeds only while used + reserved + bytes stays within quota. */
  async reserve(id: string, bytes: number): Promise<boolean> {
    const r = await this.db.run(
      'UPDATE events SET reserved_bytes = reserved_bytes + ? WHERE id = ? AND used_bytes + reserved_bytes + ? <= quota_bytes',
      [bytes, id, bytes],
    );
    return r.changes === 1;
  }

  async adjust(id: string, usedDelta: number, reservedDelta: number): Promise<void> {
    await this.db.run(
      'UPDATE events SET used_bytes = MAX(0, used_bytes + ?), reserved_bytes = MAX(0, reserved_bytes + ?) WHERE id = ?',
      [usedDelta, reservedDelta, id],
    );
  }
}
