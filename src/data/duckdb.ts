/**
 * The one way resflow opens DuckDB (Parquet reading and writing, CSV import): instances and connections
 * are always closed, failures to open become DataErrors, and SQL text is built with the two quoting
 * helpers below, never by hand.
 */
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { DataError } from '../base/errors.js';

/** A string literal for SQL text: 'it''s'. */
export function sqlString(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/** A quoted identifier for SQL text: "my ""column""". */
export function sqlIdent(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}

/** The first line of an error's message (DuckDB's messages go on with context lines). */
export function firstLine(err: unknown): string {
  return String(err instanceof Error ? err.message : err).split('\n')[0]!;
}

export interface DuckDBOptions {
  /** Database file; ':memory:' (the default) for none. */
  path?: string;
  /** DuckDB settings, e.g. { threads: '2', memory_limit: '128MB' }. */
  settings?: Record<string, string>;
}

/** Opens a DuckDB instance; a failure to open is a DataError that names the database. */
export async function openDuckDB(opts: DuckDBOptions = {}): Promise<DuckDBInstance> {
  const path = opts.path ?? ':memory:';
  try {
    return await DuckDBInstance.create(path, opts.settings);
  } catch (err) {
    throw new DataError(`cannot open DuckDB database '${path}': ${firstLine(err)}`);
  }
}

/** Opens a DuckDB instance, runs fn with a connection, and always closes both. */
export async function withDuckDB<T>(fn: (con: DuckDBConnection) => Promise<T>, opts: DuckDBOptions = {}): Promise<T> {
  const instance = await openDuckDB(opts);
  try {
    const con = await instance.connect();
    try {
      return await fn(con);
    } finally {
      con.closeSync();
    }
  } finally {
    instance.closeSync();
  }
}

let shared: Promise<DuckDBInstance> | undefined;

/**
 * A new connection to the process's shared in-memory instance (readers open many files; one instance
 * keeps DuckDB's thread pool and caches shared). The caller closes the connection; the instance lives
 * as long as the process.
 */
export async function sharedConnection(): Promise<DuckDBConnection> {
  shared ??= openDuckDB({ settings: { threads: '2' } });
  return (await shared).connect();
}
