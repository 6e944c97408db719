/**
 * CSV for `data inspect` (training reads Parquet and Arrow IPC): the file's description, and its rows
 * streamed through DuckDB like Parquet's. A bad line is an error naming the file and line (csv.ts).
 */
import { DataError } from '../base/errors.js';
import { csvLayout, csvReadError, csvRejects, csvSource, describeReject, locateBadLine, type CsvLayout } from './csv.js';
import { withDuckDB } from './duckdb.js';
import { classify, duckdbBatches } from './read-parquet.js';
import type { ColumnKind, RawBatch, TableInfo } from './raw-batch.js';

/** The read both csvInfo and csvBatches use; refused lines go to a table instead of stopping the read (csv.ts). */
function source(file: string): { layout: CsvLayout; src: string } {
  const layout = csvLayout([file]);
  return { layout, src: csvSource([file], layout, ', store_rejects = true') };
}

export async function csvInfo(file: string): Promise<TableInfo> {
  const { layout, src } = source(file);
  return withDuckDB(async (con) => {
    let info: TableInfo;
    try {
      const d = await con.runAndReadAll(`DESCRIBE SELECT * FROM ${src}`);
      const columns = d.getRows().map((r) => ({ name: String(r[0]), type: String(r[1]), kind: classify(String(r[1])) }));
      // hash(t) reads every column of every row, so a value of the wrong type is found here too.
      const r = await con.runAndReadAll(`SELECT COUNT(*)::BIGINT, bit_xor(hash(t)) FROM ${src} t`);
      info = { file, format: 'csv', rows: Number(r.getRows()[0]![0]), columns };
    } catch (err) {
      if (/CSV Error on Line/.test(String(err))) throw csvReadError(err, file);
      // DuckDB could not detect column types with this dialect: find the line that breaks it.
      const bad = await locateBadLine(con, [file], layout).catch(() => ({ first: null, count: 0 }));
      if (bad.first) throw new DataError(describeReject(bad.first));
      throw csvReadError(err, file);
    }
    const rejects = await csvRejects(con);
    if (rejects.first) throw new DataError(`${describeReject(rejects.first)}${rejects.count > 1 ? `; ${rejects.count} bad lines in all` : ''}`);
    return info;
  });
}

export function csvBatches(info: TableInfo, wanted: { name: string; kind: ColumnKind }[], batchRows: number): AsyncGenerator<RawBatch> {
  return duckdbBatches(info, source(info.file).src, wanted, batchRows, (err) => csvReadError(err, info.file));
}
