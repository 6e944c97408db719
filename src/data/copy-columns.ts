/**
 * Input columns copied into an output table as read (`resflow predict --pass`, `eval
 * --save-predictions --with`): one output type per column over every file (int64 for integer
 * columns, float64 for other numbers, string otherwise; a list column as the text of a JSON list),
 * and the values of a raw batch in that type.
 */
import { DataError } from '../base/errors.js';
import { fileRow, type RawBatch, type RawColumn, type TableInfo } from './reader.js';
import type { ColumnDef, ColumnValues } from './table-schema.js';

const INTEGER_TYPES = /^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|INT\d*|UINT\d*)$/i;

export interface CopiedColumn {
  /** Input column. */
  source: string;
  /** Output column. */
  def: ColumnDef;
  /** Why it is copied, for error messages (`--pass`, `request`, ...). */
  what: string;
}

/** The output type of a copied column: one type for every file (int64 for integer columns, float64 for other numbers, else string). */
export function copiedType(tables: TableInfo[], name: string): ColumnDef['type'] {
  const cols = tables.map((t) => t.columns.find((c) => c.name === name)!);
  if (cols.every((c) => c.kind === 'number' && INTEGER_TYPES.test(c.type))) return 'int64';
  if (cols.every((c) => c.kind === 'number')) return 'float64';
  return 'string';
}

/** The kind to read a copied column as (lists whole, everything else as stored). */
export function copiedKind(tables: TableInfo[], name: string): 'list' | 'id' {
  return tables.every((t) => t.columns.find((c) => c.name === name)?.kind === 'list') ? 'list' : 'id';
}

/**
 * A raw column as the writer takes it; the writer has no nulls, so a null in an integer or string
 * column is refused (naming file, column and row); in a float64 column it is NaN, in a list `null`.
 */
export function copyColumn(raw: RawBatch, file: string, c: CopiedColumn): ColumnValues {
  const col = raw.columns.get(c.source)!;
  const n = raw.length;
  const refuseNull = (i: number): never => {
    throw new DataError(`${file}: column \`${c.source}\` (${c.what}) holds a null at ${fileRow(raw, i)}; the output cannot hold nulls in ${c.def.type} columns`);
  };
  if (col.type === 'list') return listText(col);
  if (c.def.type === 'string') {
    return Array.from({ length: n }, (_, i) => {
      if (col.type === 'string') return col.values[i] ?? refuseNull(i);
      if (col.valid && !col.valid[i]) refuseNull(i);
      return String(col.values[i]);
    });
  }
  if (col.type !== 'number') throw new DataError(`${file}: column \`${c.source}\` (${c.what}) holds strings here but numbers in another file`);
  if (c.def.type === 'float64') {
    if (!col.valid) return col.values;
    return Float64Array.from(col.values, (v, i) => (col.valid![i] ? v : NaN));
  }
  if (col.valid) for (let i = 0; i < n; i++) if (!col.valid[i]) refuseNull(i);
  return col.values;
}

/** Each row's list as the text of a JSON list (`[3,17]`, `["a","b"]`). */
function listText(col: Extract<RawColumn, { type: 'list' }>): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < col.offsets.length; i++) {
    const items: unknown[] = [];
    for (let j = col.offsets[i]!; j < col.offsets[i + 1]!; j++) items.push(col.values[j] ?? null);
    out.push(JSON.stringify(items));
  }
  return out;
}
