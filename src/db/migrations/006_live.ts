/** Live events: when an event completed (announced once), per-event webhooks, and the delivery outbox. */
export const sql = `
ALTER TABLE events ADD COLUMN completed_at INTEGER;
CREATE TABLE event_webhooks (
  id INTEGER PRIMARY KEY,
  event_id TEXT NOT NULL REFERENCES events(id) ON DELETE CASCADE,
  url TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  UNIQUE (event_id, url)
);
CREATE TABLE webhook_deliveries (
  id INTEGER PRIMARY KEY,
  url TEXT NOT NULL,
  event_type TEXT NOT NULL,
  payload TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_at INTEGER NOT NULL,
  delivered_at INTEGER,
  failed_at INTEGER,
  last_error TEXT,
  created_at INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(delivered_at, failed_at, next_at);
`;
