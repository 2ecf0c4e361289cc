import type { Database } from '../db/Database.js';
import type { AccessEntry } from '../db/repos/accessLog.js';
import type { Logger } from '../shared/log.js';

/**
 * Access-log rows and unlimited download counters are written in batches (one transaction every
 * 250 ms): with synchronous=FULL a commit per GET would cap small downloads at the disk's fsync
 * rate. Counters that enforce a limit (maxDownloads) never wait here; they update atomically at once.
 */
export class AccessRecorder {
  private queue: AccessEntry[] = [];
  private readonly counts = new Map<number, { n: number; at: number }>();
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> = Promise.resolve();

  constructor(private readonly db: Database, private readonly log: Logger, private readonly delayMs = 250) {}

  record(entry: AccessEntry): void {
    this.queue.push(entry);
    this.schedule();
  }

  countDownload(recipientId: number, at: number): void {
    const c = this.counts.get(recipientId) ?? { n: 0, at };
    c.n++;
    c.at = at;
    this.counts.set(recipientId, c);
    this.schedule();
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.flush();
    }, this.delayMs);
    this.timer.unref();
  }

  /** Writes everything queued so far; callers that read the log await it first. */
  flush(): Promise<void> {
    const entries = this.queue;
    const counts = [...this.counts.entries()];
    this.queue = [];
    this.counts.clear();
    const run = async () => {
      if (entries.length === 0 && counts.length === 0) return;
      try {
        await this.db.transaction(async (tx) => {
          for (const e of entries) {
            await tx.run('INSERT INTO access_log (event_id, at, who, protocol, action, path, bytes, ip) VALUES (?, ?, ?, ?, ?, ?, ?, ?)', [
              e.event_id, e.at, e.who, e.protocol, e.action, e.path, e.bytes, e.ip,
            ]);
          }
          for (const [id, c] of counts) {
            await tx.run('UPDATE recipients SET downloads = downloads + ?, last_access_at = ? WHERE id = ?', [c.n, c.at, id]);
          }
        }, { durable: false });
      } catch (err) {
        this.log.error({ err, entries: entries.length }, 'access log flush failed');
      }
    };
    this.flushing = this.flushing.then(run);
    return this.flushing;
  }

  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.flush();
  }
}
