/** Parameters are positional `?` placeholders: portable SQL that a PostgreSQL driver can translate. */
export type SqlValue = string | number | bigint | null | Buffer;
export type Row = Record<string, unknown>;

export interface RunResult {
  changes: number;
  lastId: number;
}

export interface Queryable {
  query<T extends object = Row>(sql: string, params?: SqlValue[]): Promise<T[]>;
  get<T extends object = Row>(sql: string, params?: SqlValue[]): Promise<T | undefined>;
  run(sql: string, params?: SqlValue[]): Promise<RunResult>;
}

export interface Database extends Queryable {
  /**
   * Runs `fn` in one transaction on the writer connection; commits on resolve, rolls back on throw.
   * `durable: false` lets the commit skip its own disk flush: for bookkeeping whose loss in a power
   * cut is harmless (an upload being prepared, batched access-log rows). The next durable commit
   * flushes it along with itself.
   */
  transaction<T>(fn: (tx: Queryable) => Promise<T>, opts?: { durable?: boolean }): Promise<T>;
  exec(sql: string): Promise<void>;
  /**
   * Runs `work`, a flush of many other files on the same disk (the storage's syncfs), letting the
   * database know that a flush of its own would wait behind it meanwhile.
   */
  duringBulkFlush<T>(work: () => Promise<T>): Promise<T>;
  /** Waits (at most `maxMs`) until no write has run for `quietMs`: lets request handlers finish before close. */
  settle(quietMs: number, maxMs: number): Promise<void>;
  close(): Promise<void>;
}
