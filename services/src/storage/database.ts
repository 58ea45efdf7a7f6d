export type DatabaseDriver = 'postgres' | 'pglite';

export interface QueryResult<Row> {
  rows: Row[];
  /** Rows returned or affected. */
  rowCount: number;
}

/** What a query can run on: the database itself or an open transaction. */
export interface Queryable {
  /** One statement with `$1`-style parameters. */
  query<Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<Row>>;
  /** A script of several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

/**
 * The one database interface all code uses. Both drivers speak real PostgreSQL and return the same
 * JavaScript types: uuid, text, numeric and int8 as strings (int8 and numeric can exceed 2^53),
 * timestamptz as Date, jsonb as parsed JSON, boolean as boolean.
 */
export interface Database extends Queryable {
  readonly driver: DatabaseDriver;
  /** Where the data lives, safe to print (no password). */
  readonly location: string;
  /**
   * Runs `fn` in a transaction: committed when it resolves, rolled back when it throws. Queries inside
   * must go through `tx`; with PGlite (one connection) a query on the database itself would wait for
   * the transaction to end.
   */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Rejects when the database cannot answer a trivial query. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
