/**
 * Parquet through DuckDB: batches are appended (as raw DuckDB data chunks, copied column by column)
 * into a table of a temporary DuckDB database file in os.tmpdir() (DuckDB writes full row groups to
 * that file as they fill, so memory stays flat), then `COPY ... TO ... (FORMAT parquet)` writes the
 * file in one pass and the database file is deleted.
 */
import { rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import duckdb from '@duckdb/node-bindings';
import { BIGINT, DOUBLE, DuckDBDataChunk, type DuckDBConnection, FLOAT, INTEGER, LIST, TINYINT, VARCHAR, type DuckDBType } from '@duckdb/node-api';
import { sqlIdent, sqlString, withDuckDB } from './duckdb.js';
import type { ColumnBatch, ColumnDef, ColumnType } from './table-schema.js';
import { canonBatch, int64Words, iterate, type Canon } from './write-columns.js';

const DUCK_TYPES: Record<ColumnType, { sql: string; type: () => DuckDBType }> = {
  int8: { sql: 'TINYINT', type: () => TINYINT },
  int32: { sql: 'INTEGER', type: () => INTEGER },
  int64: { sql: 'BIGINT', type: () => BIGINT },
  float32: { sql: 'FLOAT', type: () => FLOAT },
  float64: { sql: 'DOUBLE', type: () => DOUBLE },
  string: { sql: 'VARCHAR', type: () => VARCHAR },
  list_int32: { sql: 'INTEGER[]', type: () => LIST(INTEGER) },
};

/** Fills chunk (already sized to n rows) with rows [start, start+n) of the batch. */
function fillChunk(chunk: DuckDBDataChunk, cols: Canon[], start: number, n: number, scratch: Int32Array): void {
  const raw = chunk.chunk;
  for (let c = 0; c < cols.length; c++) {
    const col = cols[c]!;
    const vec = duckdb.data_chunk_get_vector(raw, c);
    switch (col.kind) {
      case 'fixed': {
        const a = col.data;
        const bpe = a.BYTES_PER_ELEMENT;
        duckdb.copy_data_to_vector(vec, 0, a.buffer as ArrayBuffer, a.byteOffset + start * bpe, n * bpe);
        break;
      }
      case 'int64': {
        int64Words(col.data, start, n, scratch);
        duckdb.copy_data_to_vector(vec, 0, scratch.buffer as ArrayBuffer, scratch.byteOffset, n * 8);
        break;
      }
      case 'string': {
        const a = col.data;
        for (let i = 0; i < n; i++) duckdb.vector_assign_string_element(vec, i, a[start + i]!);
        break;
      }
      case 'list': {
        const { offsets, values } = col.data;
        const base = offsets[start]!;
        const total = offsets[start + n]! - base;
        // list entries: (offset: uint64, length: uint64) per row, offsets relative to this chunk
        for (let i = 0; i < n; i++) {
          scratch[4 * i] = offsets[start + i]! - base;
          scratch[4 * i + 1] = 0;
          scratch[4 * i + 2] = offsets[start + i + 1]! - offsets[start + i]!;
          scratch[4 * i + 3] = 0;
        }
        duckdb.copy_data_to_vector(vec, 0, scratch.buffer as ArrayBuffer, scratch.byteOffset, n * 16);
        duckdb.list_vector_reserve(vec, total);
        duckdb.list_vector_set_size(vec, total);
        if (total > 0) {
          const child = duckdb.list_vector_get_child(vec);
          duckdb.copy_data_to_vector(child, 0, values.buffer as ArrayBuffer, values.byteOffset + base * 4, total * 4);
        }
        break;
      }
    }
  }
}

/** Rough in-memory bytes per row of a column while DuckDB builds a row group. */
const ROW_BYTES: Record<ColumnType, number> = {
  int8: 1,
  int32: 4,
  int64: 8,
  float32: 4,
  float64: 8,
  string: 32,
  list_int32: 32,
};

/**
 * DuckDB settings for staging a Parquet file. The memory limit bounds DuckDB's buffer pool (the staged
 * table spills to the scratch database file beyond it); the Parquet writer needs about two row groups
 * per thread in memory and cannot spill, so the limit grows with the row group size (and a COPY that
 * still runs out of memory is retried with more). Measured on the 10M-row synthetic preset (2 cores):
 * peak RSS ~450 MB with a 64 MB limit, ~530 MB with 128 MB (the floor here), ~870 MB with 256 MB, at
 * about the same speed.
 */
function parquetSettings(schema: ColumnDef[], rowGroupSize: number): { threads: number; memoryMB: number } {
  const threads = Math.max(1, Math.min(4, availableParallelism()));
  const rowBytes = schema.reduce((s, c) => s + ROW_BYTES[c.type], 0);
  const need = (rowGroupSize * rowBytes * (threads + 1) * 2) / 2 ** 20;
  return { threads, memoryMB: Math.max(128, Math.ceil(need)) };
}

export async function writeParquet(
  tmp: string,
  file: string,
  schema: ColumnDef[],
  batches: Iterable<ColumnBatch> | AsyncIterable<ColumnBatch>,
  compression: string,
  rowGroupSize: number,
): Promise<number> {
  // A scratch database file keeps memory flat for large tables: DuckDB writes full row groups of the
  // appended data to it instead of holding the table in memory.
  const dbFile = join(tmpdir(), `resflow-write-${process.pid}-${randomBytes(6).toString('hex')}.duckdb`);
  const settings = parquetSettings(schema, rowGroupSize);
  const duck = {
    path: dbFile,
    settings: { memory_limit: `${settings.memoryMB}MB`, threads: String(settings.threads), preserve_insertion_order: 'true' },
  };
  try {
    return await withDuckDB(async (con) => {
      const rows = await stageTable(con, file, schema, batches);
      await copyToParquet(con, tmp, compression, rowGroupSize, settings.memoryMB);
      return rows;
    }, duck);
  } finally {
    rmSync(dbFile, { force: true });
    rmSync(`${dbFile}.wal`, { force: true });
    rmSync(`${dbFile}.tmp`, { recursive: true, force: true });
  }
}

/** Appends every batch to a new table `t`; returns the rows appended. */
async function stageTable(
  con: DuckDBConnection,
  file: string,
  schema: ColumnDef[],
  batches: Iterable<ColumnBatch> | AsyncIterable<ColumnBatch>,
): Promise<number> {
  const cols = schema.map((c) => `${sqlIdent(c.name)} ${DUCK_TYPES[c.type].sql}`).join(', ');
  await con.run(`CREATE TABLE t (${cols})`);
  const appender = await con.createAppender('t');
  const vsize = duckdb.vector_size();
  const types = schema.map((c) => DUCK_TYPES[c.type].type());
  const scratch = new Int32Array(vsize * 4);
  // One chunk, reused: chunks own native memory that JS garbage collection does not see, so
  // creating one per 2048 rows lets hundreds of MB pile up before finalizers run.
  const chunk = DuckDBDataChunk.create(types);
  let rows = 0;
  let appended = false;
  try {
    for await (const batch of iterate(batches)) {
      const canon = canonBatch(file, schema, batch);
      for (let start = 0; start < batch.length; start += vsize) {
        const n = Math.min(vsize, batch.length - start);
        chunk.reset();
        chunk.rowCount = n;
        fillChunk(chunk, canon, start, n, scratch);
        appender.appendDataChunk(chunk);
      }
      rows += batch.length;
    }
    appended = true;
  } finally {
    try {
      appender.closeSync();
    } catch (err) {
      if (appended) throw err; // otherwise keep the error that got us here
    }
  }
  return rows;
}

/**
 * Writes table `t` to `tmp` as Parquet. The memory estimate can fall short (wide strings, long
 * lists): on running out of memory, retry with twice the limit, a few times.
 */
async function copyToParquet(con: DuckDBConnection, tmp: string, compression: string, rowGroupSize: number, memoryMB: number): Promise<void> {
  const copy = `COPY t TO ${sqlString(tmp)} (FORMAT parquet, COMPRESSION ${compression}, ROW_GROUP_SIZE ${rowGroupSize})`;
  for (let attempt = 0; ; attempt++) {
    try {
      await con.run(copy);
      return;
    } catch (err) {
      if (attempt >= 4 || !/out of memory/i.test(String((err as Error)?.message ?? err))) throw err;
      memoryMB *= 2;
      rmSync(tmp, { force: true });
      await con.run(`SET memory_limit = '${memoryMB}MB'`);
    }
  }
}
