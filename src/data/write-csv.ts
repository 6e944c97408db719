/** CSV: each batch is formatted column by column and written synchronously. */
import { closeSync, openSync } from 'node:fs';
import type { ColumnBatch, ColumnDef, ColumnType } from './table-schema.js';
import { canonBatch, iterate, writeAll, type Canon } from './write-columns.js';


/** Shortest decimal text that reads back as the same float32. */
function float32Text(x: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'nan' : x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  for (let p = 6; p < 9; p++) {
    const v = Number(x.toPrecision(p));
    if (Math.fround(v) === x) return String(v);
  }
  return String(Number(x.toPrecision(9)));
}
function float64Text(x: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'nan' : x > 0 ? 'inf' : '-inf';
  return String(x);
}
function csvQuote(s: string): string {
  if (s === '' || /[",\n\r]/.test(s) || s !== s.trim()) return `"${s.replace(/"/g, '""')}"`;
  return s;
}

export async function writeCsv(
  tmp: string,
  file: string,
  schema: ColumnDef[],
  batches: Iterable<ColumnBatch> | AsyncIterable<ColumnBatch>,
): Promise<number> {
  const fd = openSync(tmp, 'w');
  let rows = 0;
  try {
    writeAll(fd, Buffer.from(schema.map((c) => csvQuote(c.name)).join(',') + '\n', 'utf8'));
    for await (const batch of iterate(batches)) {
      const canon = canonBatch(file, schema, batch);
      const n = batch.length;
      // format column by column, then join rows
      const texts = canon.map((col, c) => csvTexts(col, schema[c]!.type, n));
      const lines = new Array<string>(n);
      const row = new Array<string>(schema.length);
      for (let i = 0; i < n; i++) {
        for (let c = 0; c < texts.length; c++) row[c] = texts[c]![i]!;
        lines[i] = row.join(',');
      }
      if (n > 0) writeAll(fd, Buffer.from(lines.join('\n') + '\n', 'utf8'));
      rows += n;
    }
  } finally {
    closeSync(fd);
  }
  return rows;
}

/** The CSV text of each of a column's n values. */
function csvTexts(col: Canon, type: ColumnType, n: number): string[] {
  const out = new Array<string>(n);
  switch (col.kind) {
    case 'fixed': {
      const a = col.data;
      if (type === 'float32') for (let i = 0; i < n; i++) out[i] = float32Text(a[i]!);
      else if (type === 'float64') for (let i = 0; i < n; i++) out[i] = float64Text(a[i]!);
      else for (let i = 0; i < n; i++) out[i] = String(a[i]!);
      break;
    }
    case 'int64': {
      const a = col.data;
      for (let i = 0; i < n; i++) out[i] = String(a[i]!);
      break;
    }
    case 'string': {
      for (let i = 0; i < n; i++) out[i] = csvQuote(col.data[i]!);
      break;
    }
    case 'list': {
      const { offsets, values } = col.data;
      for (let i = 0; i < n; i++) {
        const parts: string[] = [];
        for (let j = offsets[i]!; j < offsets[i + 1]!; j++) parts.push(String(values[j]!));
        out[i] = parts.length > 1 ? `"[${parts.join(',')}]"` : `[${parts.join(',')}]`;
      }
      break;
    }
  }
  return out;
}
