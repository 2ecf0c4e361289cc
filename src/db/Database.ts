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
  /** Runs `fn` in one transaction on the writer connection; commits on resolve, rolls back on throw. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  exec(sql: string): Promise<void>;
  close(): Promise<void>;
}
