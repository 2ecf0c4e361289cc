/**
 * Small files whose bytes were made durable in the database rather than in their blob (see
 * src/cache/journal.ts): start-up recovery rewrites any such blob that did not survive a crash.
 */
export const sql = `
CREATE TABLE journaled_blobs (
  id INTEGER PRIMARY KEY,
  file_id INTEGER NOT NULL,
  event_id TEXT NOT NULL,
  blob TEXT NOT NULL,
  data BLOB NOT NULL,
  created_at INTEGER NOT NULL
)
`;
