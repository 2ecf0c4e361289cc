import type { Database } from './Database.js';
import * as m001 from './migrations/001_init.js';
import * as m002 from './migrations/002_webdav.js';
import * as m003 from './migrations/003_ssh_keys.js';
import * as m004 from './migrations/004_admin_sessions.js';
import * as m005 from './migrations/005_ops.js';
import * as m006 from './migrations/006_live.js';
import * as m007 from './migrations/007_journal.js';

/** Ordered, append-only. A landed migration is never edited; add the next number instead. */
const MIGRATIONS: Array<{ version: number; sql: string }> = [
  { version: 1, sql: m001.sql },
  { version: 2, sql: m002.sql },
  { version: 3, sql: m003.sql },
  { version: 4, sql: m004.sql },
  { version: 5, sql: m005.sql },
  { version: 6, sql: m006.sql },
  { version: 7, sql: m007.sql },
];

export async function migrate(db: Database): Promise<number> {
  await db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)');
  const rows = await db.query<{ version: number }>('SELECT version FROM schema_migrations');
  const done = new Set(rows.map((r) => r.version));
  let applied = 0;
  for (const m of MIGRATIONS) {
    if (done.has(m.version)) continue;
    await db.transaction(async (tx) => {
      for (const stmt of m.sql.split(';').map((s) => s.trim()).filter(Boolean)) await tx.run(stmt);
      await tx.run('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)', [m.version, Date.now()]);
    });
    applied++;
  }
  return applied;
}
