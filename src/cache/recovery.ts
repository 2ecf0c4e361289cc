import type { UploadRow } from '../db/repos/rows.js';
import { recoverJournaled } from './journal.js';
import { dropUpload, recomputeQuota, resetStuckStates, sweepStorage, type ReconcileDeps } from './reconcile.js';

export interface RecoveryReport {
  /** `ok`, or what PRAGMA quick_check said. */
  quickCheck: string;
  /** Retention runs that were running when the process died (the next run finishes their work). */
  interruptedRuns: number;
  /** tus uploads: the client resumes them with HEAD + PATCH. */
  uploadsKept: number;
  /** Other unfinished uploads (WebDAV PUT, SFTP): no client can resume them, so they are removed. */
  uploadsDropped: number;
  /** Files left `uploading` with nothing behind them, set back to `pending`. */
  statesReset: number;
  /** Small files whose blob did not survive the crash, written again from the database (journal.ts). */
  journaledRewritten: number;
  /** `complete` rows whose blob is missing on disk: marked `failed` so nothing serves a hole. */
  missingBlobs: number;
  tempsRemoved: number;
  orphanBlobs: number;
  containersRemoved: number;
  /** Events whose used/reserved bytes disagreed with their files and uploads. */
  quotaFixed: number;
}

/** One line per finding; neutral wording, since `handoff check` reports what `serve` would repair. */
export function describeRecovery(r: RecoveryReport): string[] {
  return [
    `database quick_check: ${r.quickCheck}`,
    `interrupted retention runs: ${r.interruptedRuns}`,
    `resumable tus uploads: ${r.uploadsKept}`,
    `interrupted non-resumable uploads: ${r.uploadsDropped}`,
    `files stuck in uploading: ${r.statesReset}`,
    `small files rewritten from the database: ${r.journaledRewritten}`,
    `complete files missing on disk: ${r.missingBlobs}`,
    `stray temp files: ${r.tempsRemoved}`,
    `orphan blobs: ${r.orphanBlobs}`,
    `stale containers: ${r.containersRemoved}`,
    `events whose quota usage disagrees: ${r.quotaFixed}`,
  ];
}

/**
 * Start-up recovery after a crash, before any port opens. With `repair` false it only reports
 * (`handoff check`, which may run beside a live server and must not touch its uploads).
 */
export async function recover(deps: ReconcileDeps, repair: boolean, now = Date.now()): Promise<RecoveryReport> {
  const check = await deps.db.query<Record<string, string>>('PRAGMA quick_check');
  const quickCheck = check.map((r) => Object.values(r)[0]).join('; ') || 'no answer';
  const running = await deps.db.get<{ n: number }>("SELECT COUNT(*) AS n FROM retention_runs WHERE status = 'running'");
  if (repair && running?.n) await deps.db.run("UPDATE retention_runs SET status = 'interrupted', finished_at = ? WHERE status = 'running'", [now]);

  let uploadsKept = 0;
  let uploadsDropped = 0;
  for (const u of await deps.db.query<UploadRow>('SELECT * FROM uploads WHERE completed_at IS NULL')) {
    if (u.protocol === 'tus') {
      // Resumable: HEAD reports min(temp size, acknowledged offset); a temp that is missing (no
      // byte written yet, or lost) just means the client resends from 0. Stale ones go with retention.
      uploadsKept++;
      continue;
    }
    uploadsDropped++;
    if (repair) await dropUpload(deps, u, now);
  }
  // Before the checks below, which would find a lost small file missing.
  const journaledRewritten = await recoverJournaled(deps.db, deps.storage, repair);
  const statesReset = await resetStuckStates(deps, now, repair, now);
  const missingBlobs = await markMissingBlobs(deps, repair, now);
  const sweep = await sweepStorage(deps, now, repair);
  const quotaFixed = await recomputeQuota(deps, repair);
  const report: RecoveryReport = {
    quickCheck, interruptedRuns: running?.n ?? 0, uploadsKept, uploadsDropped, statesReset, journaledRewritten, missingBlobs,
    tempsRemoved: sweep.tempsRemoved, orphanBlobs: sweep.orphanBlobs, containersRemoved: sweep.containersRemoved, quotaFixed,
  };
  if (quickCheck !== 'ok') deps.log.error({ quickCheck }, 'database quick_check failed: restore from a backup (README "Operations")');
  const changed = Object.entries(report).some(([k, v]) => k !== 'quickCheck' && k !== 'uploadsKept' && v !== 0);
  if (repair && changed) deps.log.warn(report, 'start-up recovery repaired state left by an interrupted run');
  else deps.log.debug(report, 'start-up recovery');
  return report;
}

/** A `complete` row must have its blob; one listing per container keeps this cheap. */
async function markMissingBlobs(deps: ReconcileDeps, repair: boolean, now: number): Promise<number> {
  const rows = await deps.db.query<{ id: number; event_id: string; blob: string }>(
    "SELECT f.id, f.event_id, f.blob FROM files f JOIN events e ON e.id = f.event_id WHERE e.purged_at IS NULL AND f.kind = 'file' AND f.state = 'complete' AND f.blob IS NOT NULL ORDER BY f.event_id",
  );
  const present = new Map<string, Set<string>>();
  const missing: number[] = [];
  for (const r of rows) {
    let blobs = present.get(r.event_id);
    if (!blobs) present.set(r.event_id, (blobs = new Set((await deps.storage.listBlobs(r.event_id)).map((b) => b.name))));
    if (!blobs.has(r.blob)) missing.push(r.id);
  }
  if (repair && missing.length) {
    deps.log.error({ files: missing.length }, 'complete files are missing from storage; marked failed');
    await deps.db.transaction(async (tx) => {
      for (const id of missing) await tx.run("UPDATE files SET state = 'failed', blob = NULL, bytes = 0, updated_at = ? WHERE id = ?", [now, id]);
    });
  }
  return missing.length;
}
