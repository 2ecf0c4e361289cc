import type { Queryable } from '../Database.js';
import type { AccessLogRow, EventRow, FileRow } from './rows.js';

/** An event row with the counts a dashboard shows, computed in one query. */
export interface EventSummaryRow extends EventRow {
  owner_name: string | null;
  files_announced: number;
  files_complete: number;
  recipients: number;
  last_download_at: number | null;
}

export interface AccessLogFilter {
  who?: string;
  action?: string;
  protocol?: string;
  /** Substring of the path. */
  path?: string;
  since?: number;
  until?: number;
}

const DOWNLOAD_ACTIONS = "('download', 'download.zip', 'download.partial')";

/** Read-side queries for overviews (admin panel); writes stay in the other repositories. */
export class SummariesRepo {
  constructor(private readonly db: Queryable) {}

  events(ownerId: number | null, limit: number, offset: number): Promise<EventSummaryRow[]> {
    const where = ownerId === null ? '' : 'WHERE e.owner_id = ?';
    return this.db.query<EventSummaryRow>(
      `SELECT e.*, u.name AS owner_name,
         (SELECT COUNT(*) FROM files f WHERE f.event_id = e.id AND f.kind = 'file' AND f.state <> 'removed') AS files_announced,
         (SELECT COUNT(*) FROM files f WHERE f.event_id = e.id AND f.kind = 'file' AND f.state = 'complete') AS files_complete,
         (SELECT COUNT(*) FROM recipients r WHERE r.event_id = e.id) AS recipients,
         (SELECT MAX(a.at) FROM access_log a WHERE a.event_id = e.id AND a.action IN ${DOWNLOAD_ACTIONS}) AS last_download_at
       FROM events e LEFT JOIN users u ON u.id = e.owner_id ${where}
       ORDER BY e.created_at DESC, e.id LIMIT ? OFFSET ?`,
      ownerId === null ? [limit, offset] : [ownerId, limit, offset],
    );
  }

  async countEvents(ownerId: number | null): Promise<number> {
    const r = ownerId === null
      ? await this.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM events')
      : await this.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM events WHERE owner_id = ?', [ownerId]);
    return r?.n ?? 0;
  }

  /** Bytes held by live (not purged) events. */
  async usedBytes(): Promise<number> {
    const r = await this.db.get<{ n: number | null }>('SELECT SUM(used_bytes) AS n FROM events WHERE purged_at IS NULL');
    return r?.n ?? 0;
  }

  accessLog(eventId: string, filter: AccessLogFilter, limit: number, offset: number): Promise<AccessLogRow[]> {
    const where = ['event_id = ?'];
    const params: Array<string | number> = [eventId];
    if (filter.who) (where.push('who = ?'), params.push(filter.who));
    if (filter.action) (where.push('action = ?'), params.push(filter.action));
    if (filter.protocol) (where.push('protocol = ?'), params.push(filter.protocol));
    // instr() rather than LIKE: a '%' or '_' in a file name is matched literally (PostgreSQL: strpos).
    if (filter.path) (where.push('instr(path, ?) > 0'), params.push(filter.path));
    if (filter.since !== undefined) (where.push('at >= ?'), params.push(filter.since));
    if (filter.until !== undefined) (where.push('at < ?'), params.push(filter.until));
    return this.db.query<AccessLogRow>(`SELECT * FROM access_log WHERE ${where.join(' AND ')} ORDER BY at DESC, id DESC LIMIT ? OFFSET ?`, [
      ...params, limit, offset,
    ]);
  }

  filesPage(eventId: string, limit: number, offset: number): Promise<FileRow[]> {
    return this.db.query<FileRow>(
      "SELECT * FROM files WHERE event_id = ? AND kind = 'file' AND state <> 'removed' ORDER BY path LIMIT ? OFFSET ?",
      [eventId, limit, offset],
    );
  }

  async fileCounts(eventId: string): Promise<{ announced: number; complete: number }> {
    const r = await this.db.get<{ announced: number; complete: number | null }>(
      "SELECT COUNT(*) AS announced, SUM(CASE WHEN state = 'complete' THEN 1 ELSE 0 END) AS complete FROM files WHERE event_id = ? AND kind = 'file' AND state <> 'removed'",
      [eventId],
    );
    return { announced: r?.announced ?? 0, complete: r?.complete ?? 0 };
  }
}
