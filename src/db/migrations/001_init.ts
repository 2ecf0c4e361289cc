/** Times are integer milliseconds since the epoch; booleans are 0/1; SQL stays portable to PostgreSQL. */
export const sql = `
CREATE TABLE users (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  role TEXT NOT NULL CHECK (role IN ('admin', 'sender')),
  password_hash TEXT,
  disabled INTEGER NOT NULL DEFAULT 0,
  quota_bytes INTEGER,
  max_ttl_ms INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE api_tokens (
  id INTEGER PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  token_hash TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL,
  last_used_at INTEGER,
  revoked_at INTEGER
);
CREATE TABLE events (
  id TEXT PRIMARY KEY,
  owner_id INTEGER NOT NULL REFERENCES users(id),
  title TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  closed_at INTEGER,
  purged_at INTEGER,
  quota_bytes INTEGER NOT NULL,
  used_bytes INTEGER NOT NULL DEFAULT 0,
  reserved_bytes INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX events_owner ON events(owner_id);
CREATE INDEX events_expiry ON events(expires_at);
CREATE TABLE files (
  id INTEGER PRIMARY KEY,
  event_id TEXT NOT NULL REFERENCES events(id) ON DELETE CASCADE,
  path TEXT NOT NULL,
  parent TEXT NOT NULL,
  name TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('file', 'dir')),
  size INTEGER,
  bytes INTEGER NOT NULL DEFAULT 0,
  sha256 TEXT,
  actual_sha256 TEXT,
  state TEXT NOT NULL CHECK (state IN ('pending', 'uploading', 'complete', 'failed', 'removed')),
  blob TEXT,
  mtime INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  UNIQUE (event_id, path)
);
CREATE INDEX files_parent ON files(event_id, parent, name);
CREATE TABLE recipients (
  id INTEGER PRIMARY KEY,
  event_id TEXT NOT NULL REFERENCES events(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  username TEXT NOT NULL UNIQUE,
  password_hash TEXT,
  ssh_public_key TEXT,
  expires_at INTEGER,
  max_downloads INTEGER,
  downloads INTEGER NOT NULL DEFAULT 0,
  revoked_at INTEGER,
  last_access_at INTEGER,
  created_at INTEGER NOT NULL,
  UNIQUE (event_id, name)
);
CREATE TABLE access_log (
  id INTEGER PRIMARY KEY,
  event_id TEXT NOT NULL,
  at INTEGER NOT NULL,
  who TEXT NOT NULL,
  protocol TEXT NOT NULL,
  action TEXT NOT NULL,
  path TEXT,
  bytes INTEGER,
  ip TEXT
);
CREATE INDEX access_log_event ON access_log(event_id, at);
CREATE TABLE uploads (
  id TEXT PRIMARY KEY,
  event_id TEXT NOT NULL REFERENCES events(id) ON DELETE CASCADE,
  path TEXT NOT NULL,
  length INTEGER,
  reserved INTEGER NOT NULL DEFAULT 0,
  offset_bytes INTEGER NOT NULL DEFAULT 0,
  sha256 TEXT,
  protocol TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  completed_at INTEGER
);
CREATE INDEX uploads_event ON uploads(event_id);
CREATE TABLE auth_failures (
  key TEXT PRIMARY KEY,
  score INTEGER NOT NULL,
  window_start INTEGER NOT NULL,
  banned_until INTEGER,
  strikes INTEGER NOT NULL DEFAULT 0,
  updated_at INTEGER NOT NULL
);
CREATE TABLE secrets (
  name TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
`;
