import type sqlite3Type from 'sqlite3';
import type { Database, Queryable, Row, RunResult, SqlValue } from './Database.js';
import { KeyedMutex } from '../shared/semaphore.js';
import { requireNative } from '../shared/native.js';

type SqliteDb = sqlite3Type.Database;

function loadBinding(): typeof sqlite3Type {
  return requireNative<typeof sqlite3Type>('sqlite3');
}

function open(sqlite: typeof sqlite3Type, file: string, mode: number): Promise<SqliteDb> {
  return new Promise((resolve, reject) => {
    const db = new sqlite.Database(file, mode, (err) => (err ? reject(err) : resolve(db)));
  });
}

const STATEMENT_CACHE = 256;

class Conn implements Queryable {
  /**
   * Prepared statements, reused: `db.run(sql)` or `db.all(sql)` prepares, runs and finalizes, three
   * thread-pool round trips per statement; a cached statement's `run` or `all` is one (a small
   * upload's two transactions went from ~40 round trips to ~15). `all` and `run` always step to
   * SQLITE_DONE, which ends a reader's implicit read transaction, so a reused statement never pins
   * an old snapshot. (Not `get`: a statement stopped at its first row would.)
   */
  private readonly statements: Map<string, sqlite3Type.Statement> | null;

  constructor(readonly db: SqliteDb, cacheStatements = false) {
    this.statements = cacheStatements ? new Map() : null;
  }

  private statement(sql: string): sqlite3Type.Statement | null {
    if (!this.statements) return null;
    let st = this.statements.get(sql);
    if (!st) {
      if (this.statements.size >= STATEMENT_CACHE) {
        const [oldSql, oldest] = this.statements.entries().next().value!;
        this.statements.delete(oldSql);
        oldest.finalize();
      }
      st = this.db.prepare(sql);
      this.statements.set(sql, st);
    }
    return st;
  }

  query<T extends object = Row>(sql: string, params: SqlValue[] = []): Promise<T[]> {
    const st = this.statement(sql);
    return new Promise((resolve, reject) => {
      const done = (err: Error | null, rows: unknown[]) => (err ? reject(err) : resolve(rows as T[]));
      if (st) st.all(params, done);
      else this.db.all(sql, params, done);
    });
  }

  async get<T extends object = Row>(sql: string, params: SqlValue[] = []): Promise<T | undefined> {
    if (this.statements) return (await this.query<T>(sql, params))[0];
    return new Promise((resolve, reject) => this.db.get(sql, params, (err, row) => (err ? reject(err) : resolve(row as T | undefined))));
  }

  run(sql: string, params: SqlValue[] = []): Promise<RunResult> {
    const st = this.statement(sql);
    return new Promise((resolve, reject) => {
      const done = function (this: sqlite3Type.RunResult, err: Error | null) {
        if (err) reject(err);
        else resolve({ changes: this.changes, lastId: this.lastID });
      };
      if (st) st.run(params, done);
      else this.db.run(sql, params, done);
    });
  }

  exec(sql: string): Promise<void> {
    return new Promise((resolve, reject) => this.db.exec(sql, (err) => (err ? reject(err) : resolve())));
  }

  async close(): Promise<void> {
    for (const st of this.statements?.values() ?? []) await new Promise<void>((resolve) => st.finalize(() => resolve()));
    this.statements?.clear();
    return new Promise((resolve, reject) => this.db.close((err) => (err ? reject(err) : resolve())));
  }
}

/**
 * Readers used one statement at a time. Two statements overlapping on one SQLite connection share
 * one read transaction, so under load a reader could keep seeing a snapshot older than a write the
 * same request just committed; exclusive use makes every read see the latest commit.
 */
class ReaderPool {
  private readonly idle: Conn[];
  private readonly waiting: Array<(c: Conn) => void> = [];

  constructor(readonly all: Conn[]) {
    this.idle = [...all];
  }

  async use<T>(fn: (c: Conn) => Promise<T>): Promise<T> {
    const conn = this.idle.pop() ?? (await new Promise<Conn>((resolve) => this.waiting.push(resolve)));
    try {
      return await fn(conn);
    } finally {
      const next = this.waiting.shift();
      if (next) next(conn);
      else this.idle.push(conn);
    }
  }
}

const READERS = 4;

/**
 * SQLite in WAL mode with synchronous=FULL: one writer connection (every write is serialised
 * through a mutex, so statements of concurrent requests never land inside each other's
 * transaction) and a few reader connections that see committed data.
 */
export class SqliteDatabase implements Database {
  private readonly lock = new KeyedMutex();
  private activeWrites = 0;
  private lastWrite = 0;

  private constructor(private readonly writer: Conn, private readonly readers: ReaderPool) {}

  private write<T>(fn: () => Promise<T>): Promise<T> {
    this.activeWrites++;
    return this.lock.run('w', fn).finally(() => {
      this.activeWrites--;
      this.lastWrite = Date.now();
    });
  }

  async settle(quietMs: number, maxMs: number): Promise<void> {
    const deadline = Date.now() + maxMs;
    while (Date.now() < deadline && (this.activeWrites > 0 || Date.now() - this.lastWrite < quietMs)) {
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  static async open(file: string): Promise<SqliteDatabase> {
    const sqlite = loadBinding();
    const writer = new Conn(await open(sqlite, file, sqlite.OPEN_READWRITE | sqlite.OPEN_CREATE), true);
    await writer.exec('PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;');
    const readers: Conn[] = [];
    for (let i = 0; i < READERS; i++) {
      const reader = new Conn(await open(sqlite, file, sqlite.OPEN_READONLY), true);
      await reader.exec('PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;');
      readers.push(reader);
    }
    return new SqliteDatabase(writer, new ReaderPool(readers));
  }

  query<T extends object = Row>(sql: string, params?: SqlValue[]): Promise<T[]> {
    return this.readers.use((c) => c.query<T>(sql, params));
  }

  get<T extends object = Row>(sql: string, params?: SqlValue[]): Promise<T | undefined> {
    return this.readers.use((c) => c.get<T>(sql, params));
  }

  run(sql: string, params?: SqlValue[]): Promise<RunResult> {
    return this.write(() => this.writer.run(sql, params));
  }

  exec(sql: string): Promise<void> {
    return this.write(() => this.writer.exec(sql));
  }

  transaction<T>(fn: (tx: Queryable) => Promise<T>, opts: { durable?: boolean } = {}): Promise<T> {
    const relaxed = opts.durable === false;
    return this.write(async () => {
      // In WAL mode synchronous=NORMAL commits without fsync; the next FULL commit syncs the WAL, this included.
      if (relaxed) await this.writer.exec('PRAGMA synchronous=NORMAL');
      try {
        await this.writer.exec('BEGIN IMMEDIATE');
        try {
          const result = await fn(this.writer);
          await this.writer.exec('COMMIT');
          return result;
        } catch (err) {
          await this.writer.exec('ROLLBACK').catch(() => undefined);
          throw err;
        }
      } finally {
        if (relaxed) await this.writer.exec('PRAGMA synchronous=FULL');
      }
    });
  }

  async close(): Promise<void> {
    await this.lock.run('w', async () => {
      for (const r of this.readers.all) await r.close();
      await this.writer.close();
    });
  }
}
