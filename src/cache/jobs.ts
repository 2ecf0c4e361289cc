import cron, { type ScheduledTask } from 'node-cron';
import type { EventRow, UploadRow } from '../db/repos/rows.js';
import type { CacheDeps } from './deps.js';
import type { EventService } from './EventService.js';
import { dropUpload, recomputeQuota, resetStuckStates, sweepStorage } from './reconcile.js';

export interface RetentionPolicy {
  schedule: string;
  auditDays: number;
  partialUploadHours: number;
}

/** What one run removed; logged as one line and stored in `retention_runs.summary`. */
export interface RunSummary {
  eventsExpired: string[];
  recipientsExpired: number;
  uploadsRemoved: number;
  finishedUploadsForgotten: number;
  statesReset: number;
  tempsRemoved: number;
  orphanBlobs: number;
  containersRemoved: number;
  bytesReclaimed: number;
  quotaFixed: number;
  accessLogPruned: number;
  tombstonesPruned: number;
  lockoutPruned: number;
  runsPruned: number;
  extra: Record<string, number>;
  errors: string[];
}

export type RunResult = { id: number; skipped: true } | { id: number; skipped: false; summary: RunSummary };

/** Something else to prune after the audit period (admin sessions live on another module). */
export interface Pruner {
  name: string;
  prune(cutoff: number): Promise<number>;
}

const DAY = 86_400_000;
const HOUR = 3_600_000;

/**
 * Retention on a node-cron schedule: expire events and recipients, drop stale partial uploads and
 * orphaned storage, reclaim quota, prune the audit trail. One run at a time per process: a run that
 * fires while the previous one is still going is skipped and recorded as such. Every step is
 * idempotent and goes "database first, then storage" (see reconcile.ts), so a crash mid-run is
 * finished by the next run or by start-up recovery.
 */
export class RetentionJob {
  private task: ScheduledTask | null = null;
  private current: Promise<RunResult> | null = null;
  private readonly listeners = new Set<(r: RunResult) => void>();
  private readonly pruners: Pruner[] = [];

  constructor(
    private readonly deps: CacheDeps,
    private readonly events: EventService,
    private readonly policy: RetentionPolicy,
  ) {}

  addPruner(p: Pruner): void {
    this.pruners.push(p);
  }

  /** Called after every run, skipped ones included (tests, the admin panel). */
  onRun(listener: (r: RunResult) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  start(): void {
    if (this.task) return;
    const log = this.deps.log;
    this.task = cron.schedule(this.policy.schedule, () => this.run().then(() => undefined), {
      name: 'handoff-retention',
      noOverlap: false, // our own guard skips and records overlapping runs, scheduled or manual alike
      suppressMissedWarning: true,
      logger: {
        info: (m) => log.info(m),
        warn: (m) => log.warn(m),
        error: (m) => log.error(m instanceof Error ? { err: m } : {}, String(m)),
        debug: (m) => log.debug(String(m)),
      },
    });
  }

  /** Stops the schedule and waits for a run in progress, so the database is not closed under it. */
  async stop(): Promise<void> {
    const task = this.task;
    this.task = null;
    if (task) await task.destroy();
    await this.current?.catch(() => undefined);
  }

  get running(): boolean {
    return this.current !== null;
  }

  run(): Promise<RunResult> {
    if (this.current) return this.skip();
    const p = this.execute().finally(() => {
      this.current = null;
    });
    this.current = p;
    return p;
  }

  private async skip(): Promise<RunResult> {
    const now = Date.now();
    const r = await this.deps.db.run("INSERT INTO retention_runs (started_at, finished_at, status) VALUES (?, ?, 'skipped')", [now, now]);
    this.deps.log.warn({ run: r.lastId }, 'retention run skipped: the previous run is still active');
    const result: RunResult = { id: r.lastId, skipped: true };
    this.notify(result);
    return result;
  }

  private notify(r: RunResult): void {
    for (const l of this.listeners) l(r);
  }

  private async execute(): Promise<RunResult> {
    const started = Date.now();
    const { lastId: id } = await this.deps.db.run("INSERT INTO retention_runs (started_at, status) VALUES (?, 'running')", [started]);
    const s: RunSummary = {
      eventsExpired: [], recipientsExpired: 0, uploadsRemoved: 0, finishedUploadsForgotten: 0, statesReset: 0, tempsRemoved: 0, orphanBlobs: 0,
      containersRemoved: 0, bytesReclaimed: 0, quotaFixed: 0, accessLogPruned: 0, tombstonesPruned: 0, lockoutPruned: 0, runsPruned: 0, extra: {}, errors: [],
    };
    const step = async (name: string, fn: () => Promise<void>) => {
      try {
        await fn();
      } catch (err) {
        // One failing step must not stop the others; the run is marked failed and retried next time.
        s.errors.push(`${name}: ${(err as Error).message}`);
        this.deps.log.error({ err, step: name }, 'retention step failed');
      }
    };
    const partialCutoff = started - this.policy.partialUploadHours * HOUR;
    const auditCutoff = started - this.policy.auditDays * DAY;
    await step('events', () => this.expireEvents(s, started));
    await step('recipients', () => this.expireRecipients(s, started));
    await step('uploads', () => this.dropStaleUploads(s, partialCutoff));
    await step('states', async () => void (s.statesReset = await resetStuckStates(this.deps, partialCutoff, true)));
    await step('storage', async () => {
      const sweep = await sweepStorage(this.deps, partialCutoff, true);
      s.tempsRemoved = sweep.tempsRemoved;
      s.orphanBlobs = sweep.orphanBlobs;
      s.containersRemoved = sweep.containersRemoved;
      s.bytesReclaimed += sweep.bytes;
    });
    await step('quota', async () => void (s.quotaFixed = await recomputeQuota(this.deps, true)));
    await step('prune', () => this.prune(s, auditCutoff, started));
    const status = s.errors.length ? 'failed' : 'ok';
    await this.deps.db.run('UPDATE retention_runs SET finished_at = ?, status = ?, summary = ? WHERE id = ?', [Date.now(), status, JSON.stringify(s), id]);
    this.deps.log.info({ run: id, status, ms: Date.now() - started, ...s }, 'retention run');
    const result: RunResult = { id, skipped: false, summary: s };
    this.notify(result);
    return result;
  }

  /** Storage goes, the event row, its manifest, recipients and access log stay as the tombstone (410). */
  private async expireEvents(s: RunSummary, now: number): Promise<void> {
    const due = await this.deps.db.query<EventRow>('SELECT * FROM events WHERE purged_at IS NULL AND expires_at <= ? ORDER BY expires_at LIMIT 1000', [now]);
    for (const e of due) {
      s.bytesReclaimed += e.used_bytes;
      try {
        await this.events.purge(e, 'expired');
      } catch (err) {
        // The database already says purged; the storage sweep removes the container next time.
        s.errors.push(`purge ${e.id}: ${(err as Error).message}`);
      }
      s.eventsExpired.push(e.id);
    }
  }

  private async expireRecipients(s: RunSummary, now: number): Promise<void> {
    const due = await this.deps.db.query<{ id: number; event_id: string }>(
      `SELECT id, event_id FROM recipients WHERE expired_at IS NULL AND revoked_at IS NULL
         AND ((expires_at IS NOT NULL AND expires_at <= ?) OR (max_downloads IS NOT NULL AND downloads >= max_downloads))`,
      [now],
    );
    if (due.length === 0) return;
    await this.deps.db.transaction(async (tx) => {
      for (const r of due) await tx.run('UPDATE recipients SET expired_at = ? WHERE id = ? AND expired_at IS NULL', [now, r.id]);
    });
    for (const r of due) {
      this.deps.credentials.forget(`recipient:${r.id}`);
      // Long-lived sessions (SFTP) listen for this and close.
      this.deps.bus.emit({ type: 'recipient.revoked', at: now, eventId: r.event_id, recipientId: r.id });
    }
    s.recipientsExpired = due.length;
  }

  /** Unfinished uploads untouched for partialUploadHours and not being written right now. */
  private async dropStaleUploads(s: RunSummary, cutoff: number): Promise<void> {
    const stale = await this.deps.db.query<UploadRow>('SELECT * FROM uploads WHERE completed_at IS NULL AND updated_at <= ?', [cutoff]);
    for (const u of stale) {
      if (this.deps.live.bytes(u.event_id, u.path) !== null) continue;
      s.bytesReclaimed += await dropUpload(this.deps, u);
      s.uploadsRemoved++;
    }
    // A finished tus upload keeps its row so a client that lost the last answer learns it is done; not forever.
    s.finishedUploadsForgotten = (await this.deps.db.run('DELETE FROM uploads WHERE completed_at IS NOT NULL AND completed_at <= ?', [cutoff])).changes;
  }

  private async prune(s: RunSummary, cutoff: number, now: number): Promise<void> {
    const db = this.deps.db;
    const old = await db.query<{ id: string }>('SELECT id FROM events WHERE purged_at IS NOT NULL AND purged_at < ? LIMIT 1000', [cutoff]);
    await db.transaction(async (tx) => {
      for (const e of old) {
        await tx.run('DELETE FROM access_log WHERE event_id = ?', [e.id]);
        await tx.run('DELETE FROM events WHERE id = ?', [e.id]);
      }
    });
    s.tombstonesPruned = old.length;
    s.accessLogPruned = (await db.run('DELETE FROM access_log WHERE at < ?', [cutoff])).changes;
    // Lockout rows keep their strike count (growing bans) for the audit period, then go unless still banned.
    s.lockoutPruned = (await db.run('DELETE FROM auth_failures WHERE updated_at < ? AND (banned_until IS NULL OR banned_until < ?)', [cutoff, now])).changes;
    s.runsPruned = (await db.run('DELETE FROM retention_runs WHERE started_at < ?', [cutoff])).changes;
    for (const p of this.pruners) s.extra[p.name] = await p.prune(cutoff);
  }
}
