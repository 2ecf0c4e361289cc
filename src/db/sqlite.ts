import type BetterSqlite3 from 'better-sqlite3';
import { fdatasyncSync } from 'node:fs';
import { open as openFile, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Database, Queryable, Row, RunResult, SqlValue } from './Database.js';
import { GatewayError } from '../shared/errors.js';
import { KeyedMutex } from '../shared/semaphore.js';
import { InlineIo } from '../shared/inlineIo.js';
import { requireNative } from '../shared/native.js';
import { Checkpointer, type CheckpointStats } from './checkpointer.js';

type Driver = typeof BetterSqlite3;
type Connection = BetterSqlite3.Database;
type Statement = BetterSqlite3.Statement<SqlValue[], unknown>;

function loadDriver(): Driver {
  return requireNative<Driver>('better-sqlite3');
}

const STATEMENT_CACHE = 256;
const WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024;
/** How long a write waits for another process (a `handoff` CLI command) to release the database. */
const BUSY_WAIT_MS = 5000;

/**
 * One connection with its prepared statements. Statements run synchronously on the calling
 * thread: a statement on this small database takes microseconds, while a thread-pool round trip
 * (node-sqlite3 made every statement one) cost 45-200 µs here and some 20 of them per upload.
 * The methods still return promises, so the `Database` seam stays the same for an asynchronous
 * driver (PostgreSQL).
 */
class Conn implements Queryable {
  private readonly statements = new Map<string, Statement>();

  constructor(readonly db: Connection) {}

  /** For a read outside any transaction: a writing statement would bypass the write lock. */
  readStatement(sql: string): Statement {
    const st = this.statement(sql);
    if (!st.reader) throw new Error('write statements run inside a transaction');
    return st;
  }

  private statement(sql: string): Statement {
    let st = this.statements.get(sql);
    if (!st) {
      if (this.statements.size >= STATEMENT_CACHE) this.statements.delete(this.statements.keys().next().value!);
      st = this.db.prepare<SqlValue[], unknown>(sql);
      this.statements.set(sql, st);
    }
    return st;
  }

  async query<T extends object = Row>(sql: string, params: SqlValue[] = []): Promise<T[]> {
    const st = this.statement(sql);
    if (!st.reader) {
      st.run(...params);
      return [];
    }
    return st.all(...params) as T[];
  }

  async get<T extends object = Row>(sql: string, params: SqlValue[] = []): Promise<T | undefined> {
    const st = this.statement(sql);
    if (!st.reader) {
      st.run(...params);
      return undefined;
    }
    // `get` resets the statement after the first row, so no read snapshot stays open.
    return st.get(...params) as T | undefined;
  }

  async run(sql: string, params: SqlValue[] = []): Promise<RunResult> {
    const r = this.statement(sql).run(...params);
    return { changes: r.changes, lastId: Number(r.lastInsertRowid) };
  }

  close(): void {
    this.statements.clear();
    this.db.close();
  }
}

function isBusy(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_BUSY_SNAPSHOT' || code === 'SQLITE_LOCKED';
}

const INLINE_FLUSH_STALL_MS = 3;
/**
 * Here 94% of lone flushes took under 0.5 ms and about one in 400 over 3 ms, a blip rather than a
 * slow disk: it costs 100 ms on the pool. A disk that keeps stalling doubles that up to a minute.
 */
const INLINE_FLUSH_BACKOFF_MS = 100;
const INLINE_FLUSH_MAX_BACKOFF_MS = 60_000;

/** How the WAL flushes ran since open (tests, diagnostics). */
export interface FlushStats {
  /** On the event loop's thread: a commit with nothing else to share its flush. */
  inline: number;
  /** On the thread pool, each covering every commit made before it started. */
  pooled: number;
}

/**
 * Makes commits durable, holding the event loop at most for a lone commit. The writer runs WAL with
 * `synchronous=NORMAL`, so COMMIT only write()s its frames; a durable commit then waits for an
 * fdatasync of the WAL file on the thread pool, which is what `synchronous=FULL` would have done
 * inside COMMIT on the main thread. The WAL only grows until a checkpoint, so one flush that starts
 * after a commit covers it and every earlier one; commits that arrive while a flush runs share the
 * next one (group commit).
 *
 * A commit with no other write in flight or queued (one client uploading small files one after
 * another: the common case, and the slow one) flushes on the calling thread instead. There is no
 * group to share the flush with, and the pool round trip (wake a pool thread, then wake the event
 * loop) cost 0.1-0.3 ms per upload on this VM, as much as a third of the flush itself: a bare
 * server doing sequential 4 KiB writes with fdatasync did 1,245-1,328 per second inline against
 * 916-1,229 through the pool, alternating, same run. A flush that takes longer than
 * INLINE_FLUSH_STALL_MS (a slow or busy disk) sends every flush back to the pool for 100 ms,
 * doubling while the flushes that probe again stall too (up to a minute), so a disk that stalls
 * never holds the event loop more than once in a while. Nor does a lone commit flush inline while
 * the storage's syncfs (the journal's batch flush) or a checkpoint runs: its flush would wait
 * behind theirs.
 */
class WalFlusher {
  private running: Promise<void> | null = null;
  private readonly inline: InlineIo;
  private queued: Promise<void> | null = null;
  /** Set by close: its final flush covers any commit that asks after it began. */
  private closed: Promise<void> | null = null;
  readonly stats: FlushStats = { inline: 0, pooled: 0 };

  private constructor(private readonly fh: FileHandle, inlineStallMs: number) {
    this.inline = new InlineIo(inlineStallMs, INLINE_FLUSH_BACKOFF_MS, INLINE_FLUSH_MAX_BACKOFF_MS);
  }

  /**
   * fdatasync works on a read-only descriptor. The WAL file lives as long as a connection is open
   * (SQLite removes it only when the last one closes, and a journal-mode switch needs exclusive
   * access), so one descriptor opened after ours stays valid.
   */
  static async open(dbFile: string, inlineStallMs: number): Promise<WalFlusher> {
    return new WalFlusher(await openFile(`${dbFile}-wal`, 'r'), inlineStallMs);
  }

  /** `alone`: no other write is in flight or queued, so nothing would share this flush. */
  flush(alone = false): Promise<void> {
    if (this.closed) return this.closed;
    if (alone && !this.running && this.inline.allowed) {
      try {
        this.inline.run(() => fdatasyncSync(this.fh.fd));
        this.stats.inline++;
      } catch (err) {
        return this.failed(err);
      }
      return Promise.resolve();
    }
    if (!this.running) {
      this.running = this.sync().finally(() => {
        this.running = null;
      });
      return this.running;
    }
    this.queued ??= this.running.then(() => {
      this.queued = null;
      return this.flush();
    });
    return this.queued;
  }

  private async sync(): Promise<void> {
    try {
      await this.fh.datasync();
      this.stats.pooled++;
    } catch (err) {
      await this.failed(err);
    }
  }

  /**
   * After a failed fsync the kernel may have dropped the dirty pages, so a retry could "succeed"
   * without the data: stop (systemd restarts us and SQLite recovers the WAL). The commit that
   * asked is never answered.
   */
  private failed(err: unknown): Promise<never> {
    setImmediate(() => {
      throw new Error(`fdatasync of the database WAL failed; stopping: ${(err as Error).message}`);
    });
    return new Promise<never>(() => undefined);
  }

  close(): Promise<void> {
    this.closed ??= (async () => {
      while (this.running || this.queued) await (this.queued ?? this.running);
      await this.sync();
      await this.fh.close();
    })();
    return this.closed;
  }
}

/**
 * SQLite in WAL mode: one writer connection (every write is serialised through a mutex, so
 * statements of concurrent requests never land inside each other's transaction) and one reader
 * connection that sees only committed data, used for reads while a transaction is open.
 */
export class SqliteDatabase implements Database {
  private readonly lock = new KeyedMutex();
  private activeWrites = 0;
  /** Storage syncfs runs in progress (duringBulkFlush): a WAL flush now would wait behind them. */
  private bulkFlushes = 0;
  private lastWrite = 0;
  /**
   * Set when close begins. A request still running at shutdown (a tus PATCH whose socket was cut,
   * recording its offset) then gets `unavailable` instead of the driver's "connection is not open",
   * which would be logged as an internal error.
   */
  private closing = false;

  private constructor(private readonly writer: Conn, private readonly reader: Conn, private readonly wal: WalFlusher, private readonly checkpointer: Checkpointer) {}

  /**
   * `inlineFlushStallMs`: tests only (a lone commit's flush slower than this sends flushes to the
   * pool for a back-off). `walSizeLimitBytes`: what the WAL file is cut back to when it restarts
   * larger (tests use a small one).
   */
  static async open(
    file: string,
    opts: { checkpoint?: { restartBytes?: number; delayMs?: number }; inlineFlushStallMs?: number; walSizeLimitBytes?: number } = {},
  ): Promise<SqliteDatabase> {
    const Driver = loadDriver();
    // The writer waits for other processes itself (asynchronously, in `begin`); the reader rarely
    // meets a lock in WAL mode (only while another connection recovers the WAL).
    const writer = new Driver(file, { timeout: 0 });
    writer.pragma('journal_mode = WAL');
    writer.pragma('synchronous = NORMAL');
    writer.pragma('foreign_keys = ON');
    // SQLite writes the WAL file from its start again after a restart and never shrinks it, since
    // overwriting flushes faster than appending (222-230 against 324-351 µs for 48 KiB here). A
    // burst such as one huge manifest could still leave it at hundreds of MB for good: past this
    // size, the commit that restarts it cuts it back. Its working size in the benchmark is ~36 MB.
    writer.pragma(`journal_size_limit = ${Math.floor(opts.walSizeLimitBytes ?? WAL_SIZE_LIMIT_BYTES)}`);
    const reader = new Driver(file, { readonly: true, fileMustExist: true, timeout: 1000 });
    reader.pragma('foreign_keys = ON');
    // A first read in WAL mode creates the -wal file that the flusher opens.
    writer.pragma('user_version');
    const wal = await WalFlusher.open(file, opts.inlineFlushStallMs ?? INLINE_FLUSH_STALL_MS);
    // The WAL file's own directory entry must survive a power cut too.
    const dir = await openFile(dirname(file), 'r');
    await dir.sync().finally(() => dir.close());
    // Checkpoints run in a worker (see checkpointWorker.ts); SQLite's own come back if it fails.
    writer.pragma('wal_autocheckpoint = 0');
    const checkpointer = new Checkpointer(file, () => {
      if (writer.open) writer.pragma('wal_autocheckpoint = 1000');
    }, opts.checkpoint);
    return new SqliteDatabase(new Conn(writer), new Conn(reader), wal, checkpointer);
  }

  private ensureOpen(): void {
    if (this.closing) throw new GatewayError('unavailable', 'the gateway is shutting down');
  }

  private async write<T>(fn: () => Promise<T>, durable: boolean): Promise<T> {
    // Refused at once while closing (not queued behind the transactions close waits for) ...
    this.ensureOpen();
    this.activeWrites++;
    try {
      const result = await this.lock.run('w', () => {
        // ... and again under the lock: a write queued before close() would find the connection gone.
        this.ensureOpen();
        return fn();
      });
      // Inline only when nothing shares the flush and no syncfs or checkpoint would hold it up.
      if (durable) await this.wal.flush(this.activeWrites === 1 && this.bulkFlushes === 0 && !this.checkpointer.running);
      return result;
    } finally {
      this.activeWrites--;
      this.lastWrite = Date.now();
    }
  }

  /** BEGIN IMMEDIATE, waiting without blocking while another process holds the write lock. */
  private async begin(): Promise<void> {
    const deadline = Date.now() + BUSY_WAIT_MS;
    for (let pause = 1; ; pause = Math.min(50, pause * 2)) {
      try {
        this.writer.db.exec('BEGIN IMMEDIATE');
        return;
      } catch (err) {
        if (!isBusy(err) || Date.now() > deadline) throw err;
        await sleep(pause);
      }
    }
  }

  async settle(quietMs: number, maxMs: number): Promise<void> {
    const deadline = Date.now() + maxMs;
    while (Date.now() < deadline && (this.activeWrites > 0 || Date.now() - this.lastWrite < quietMs)) {
      await sleep(20);
    }
  }

  /**
   * Reads outside a transaction use the writer when it has none open: it then sees exactly the
   * committed state, and its page cache is warm. The reader connection's cache is dropped by every
   * commit (SQLite resets it when the WAL changes), so a lookup there re-reads its pages: 17 µs
   * instead of a few, seven times per WebDAV PUT. While a transaction is open (its body awaits),
   * other requests read through the reader, which cannot see that transaction's uncommitted rows.
   */
  private read<R>(sql: string, use: (st: Statement) => R): R {
    this.ensureOpen();
    const conn = this.writer.db.inTransaction ? this.reader : this.writer;
    try {
      return use(conn.readStatement(sql));
    } catch (err) {
      // The writer does not wait for locks (timeout 0); the reader does, briefly.
      if (conn === this.writer && isBusy(err)) return use(this.reader.readStatement(sql));
      throw err;
    }
  }

  async query<T extends object = Row>(sql: string, params: SqlValue[] = []): Promise<T[]> {
    return this.read(sql, (st) => st.all(...params) as T[]);
  }

  async get<T extends object = Row>(sql: string, params: SqlValue[] = []): Promise<T | undefined> {
    // `get` resets the statement after the first row, so no read snapshot stays open.
    return this.read(sql, (st) => st.get(...params) as T | undefined);
  }

  run(sql: string, params?: SqlValue[]): Promise<RunResult> {
    return this.transaction((tx) => tx.run(sql, params));
  }

  async duringBulkFlush<T>(work: () => Promise<T>): Promise<T> {
    this.bulkFlushes++;
    try {
      return await work();
    } finally {
      this.bulkFlushes--;
    }
  }

  /** Runs `sql` (schema statements) in a transaction of its own. */
  exec(sql: string): Promise<void> {
    return this.transaction(async () => {
      this.writer.db.exec(sql);
    });
  }

  transaction<T>(fn: (tx: Queryable) => Promise<T>, opts: { durable?: boolean } = {}): Promise<T> {
    // `durable: false` skips the flush: the next durable commit's flush covers this one.
    return this.write(async () => {
      await this.begin();
      try {
        const result = await fn(this.writer);
        this.writer.db.exec('COMMIT');
        this.checkpointer.nudge();
        return result;
      } catch (err) {
        if (this.writer.db.inTransaction) this.writer.db.exec('ROLLBACK');
        throw err;
      }
    }, opts.durable !== false);
  }

  /** How the WAL flushes ran since open (tests, diagnostics). */
  flushes(): FlushStats {
    return { ...this.wal.stats };
  }

  /** How the WAL checkpoints went since open (tests, diagnostics). */
  checkpoints(): CheckpointStats {
    return this.checkpointer.snapshot();
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.lock.run('w', async () => {
      await this.checkpointer.close();
      await this.wal.close();
      this.reader.close();
      this.writer.close();
    });
  }
}
