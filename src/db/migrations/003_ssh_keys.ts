/** SSH public keys of sender and admin accounts (recipients keep theirs in recipients.ssh_public_key). */
export const sql = `
CREATE TABLE user_ssh_keys (
  id INTEGER PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  public_key TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  UNIQUE (user_id, fingerprint)
);
CREATE INDEX user_ssh_keys_user ON user_ssh_keys(user_id);
`;
