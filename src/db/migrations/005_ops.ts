/**
 * Operations (issue 8): recipients expired by the retention job, a log of retention runs, and
 * indexes for the sweeps that run every few minutes over the whole database.
 */
export const sql = `
ALTER TABLE recipients ADD COLUMN expired_at INTEGER;
CREATE TABLE retention_runs (
  id INTEGER PRIMARY KEY,
  started_at INTEGER NOT NULL,
  finished_at INTEGER,
  status TEXT NOT NULL CHECK (status IN ('running', 'ok', 'failed', 'skipped', 'interrupted')),
  summary TEXT
);
CREATE INDEX retention_runs_started ON retention_runs(started_at);
CREATE INDEX access_log_at ON access_log(at);
CREATE INDEX events_purged ON events(purged_at);
CREATE INDEX uploads_updated ON uploads(updated_at);
CREATE INDEX files_blob ON files(event_id, blob)
`;
