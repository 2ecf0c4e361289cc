/**
 * WebDAV locks and dead properties live in the database, so every gateway node sharing it sees
 * the same locks. `file_id` NULL means the event root; rows vanish with their file or event.
 */
export const sql = `
CREATE TABLE dav_locks (
  token TEXT PRIMARY KEY,
  event_id TEXT NOT NULL REFERENCES events(id) ON DELETE CASCADE,
  file_id INTEGER REFERENCES files(id) ON DELETE CASCADE,
  principal TEXT NOT NULL,
  scope TEXT NOT NULL CHECK (scope IN ('exclusive', 'shared')),
  depth TEXT NOT NULL CHECK (depth IN ('0', 'infinity')),
  owner TEXT,
  timeout_ms INTEGER,
  refreshed_at INTEGER NOT NULL,
  provisional INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX dav_locks_node ON dav_locks(event_id, file_id);
CREATE TABLE dav_properties (
  id INTEGER PRIMARY KEY,
  event_id TEXT NOT NULL REFERENCES events(id) ON DELETE CASCADE,
  file_id INTEGER REFERENCES files(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  value TEXT NOT NULL
);
CREATE INDEX dav_properties_node ON dav_properties(event_id, file_id, name);
`;
