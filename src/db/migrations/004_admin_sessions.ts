/**
 * Admin panel sessions of signed-in admins. The cookie carries a random id; only its SHA-256 is
 * stored, so a copy of the database does not hand out live sessions. Times are integer ms;
 * `expires_at` is the absolute limit, `last_seen_at` drives the idle limit, `cred_tag`
 * ties the session to the password it was opened with. (Pre-login visitors
 * get no row: their login-form token is derived, so they cannot make the database grow.)
 */
export const sql = `
CREATE TABLE admin_sessions (
  id_hash TEXT PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  cred_tag TEXT NOT NULL,
  csrf_token TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  last_seen_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  flash TEXT,
  ip TEXT
);
CREATE INDEX admin_sessions_user ON admin_sessions(user_id);
CREATE INDEX admin_sessions_seen ON admin_sessions(last_seen_at);
CREATE INDEX admin_sessions_expiry ON admin_sessions(expires_at)
`;
