/**
 * Arrow IPC (file format) through apache-arrow: each batch becomes one record batch, written
 * synchronously to the file.
 */
import { closeSync, openSync } from 'node:fs';
import { Data, Field, Float32, Float64, Int8, Int32, Int64, List, RecordBatch, RecordBatchFileWriter, Schema, Struct, Utf8, makeData } from 'apache-arrow';
import { DataError } from '../base/errors.js';
import type { ColumnBatch, ColumnDef, ColumnType, ColumnValues } from './table-schema.js';
import { canonBatch, int64Words, iterate, writeAll, type Canon } from './write-columns.js';

function arrowType(t: ColumnType) {
  switch (t) {
    case 'int8':
      return new Int8();
    case 'int32':
      return new Int32();
    case 'int64':
      return new Int64();
    case 'float32':
      return new Float32();
    case 'float64':
      return new Float64();
    case 'string':
      return new Utf8();
    case 'list_int32':
      return new List(new Field('item', new Int32(), false));
  }
}

function utf8Data(strings: string[]): Data<Utf8> {
  const n = strings.length;
  const offsets = new Int32Array(n + 1);
  let total = 0;
  for (let i = 0; i < n; i++) {
    total += Buffer.byteLength(strings[i]!, 'utf8');
    if (total > 0x7fffffff) throw new DataError('a string column batch holds more than 2 GiB of text');
    offsets[i + 1] = total;
  }
  const bytes = Buffer.allocUnsafe(total);
  for (let i = 0; i < n; i++) bytes.write(strings[i]!, offsets[i]!, 'utf8');
  const data = new Uint8Array(bytes.buffer, bytes.byteOffset, total);
  return makeData({ type: new Utf8(), length: n, nullCount: 0, valueOffsets: offsets, data });
}

function arrowColumn(def: ColumnDef, col: Canon, length: number): Data {
  switch (col.kind) {
    case 'fixed': {
      const type = arrowType(def.type) as Int8 | Int32 | Float32 | Float64;
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      return makeData({ type, length, nullCount: 0, data: col.data } as any);
    }
    case 'int64': {
      let data: BigInt64Array;
      if (col.data instanceof BigInt64Array) data = col.data;
      else {
        data = new BigInt64Array(length);
        int64Words(col.data, 0, length, new Int32Array(data.buffer));
      }
      return makeData({ type: new Int64(), length, nullCount: 0, data });
    }
    case 'string':
      return utf8Data(col.data);
    case 'list': {
      const { offsets, values } = col.data;
      const child = makeData({ type: new Int32(), length: values.length, nullCount: 0, data: values });
      const type = arrowType('list_int32') as List<Int32>;
      return makeData({ type, length, nullCount: 0, valueOffsets: offsets, child });
    }
  }
}

export async function writeArrow(
  tmp: string,
  file: string,
  schema: ColumnDef[],
  batches: Iterable<ColumnBatch> | AsyncIterable<ColumnBatch>,
): Promise<number> {
  const fields = schema.map((c) => new Field(c.name, arrowType(c.type), false));
  const arrowSchema = new Schema(fields);
  const fd = openSync(tmp, 'w');
  let rows = 0;
  let failed = false;
  const writer = new RecordBatchFileWriter();
  // The writer queues its output; this loop moves it to the file. It runs in microtasks, so the queue
  // is empty again whenever the producer yields to the event loop (after every batch).
  const pump = (async () => {
    for await (const chunk of writer) writeAll(fd, chunk);
  })();
  pump.catch(() => {
    failed = true;
  });
  try {
    const emit = (length: number, datas: Data[]) => {
      const struct = makeData({ type: new Struct(fields), length, nullCount: 0, children: datas });
      writer.write(new RecordBatch(arrowSchema, struct));
    };
    for await (const batch of iterate(batches)) {
      const canon = canonBatch(file, schema, batch);
      emit(
        batch.length,
        schema.map((def, i) => arrowColumn(def, canon[i]!, batch.length)),
      );
      rows += batch.length;
      await new Promise<void>((r) => setImmediate(r));
      if (failed) break;
    }
    if (rows === 0 && !failed) {
      // a file with a schema and no rows: one empty record batch
      const empty: ColumnBatch = { length: 0, columns: {} };
      for (const c of schema) empty.columns[c.name] = emptyColumn(c.type);
      const canon = canonBatch(file, schema, empty);
      emit(0, schema.map((def, i) => arrowColumn(def, canon[i]!, 0)));
    }
    writer.finish();
    writer.close();
    await pump;
  } catch (err) {
    writer.abort(err);
    await pump.catch(() => undefined);
    throw err;
  } finally {
    closeSync(fd);
  }
  return rows;
}

/** A column of no rows, of the array type the writers take for `type`. */
function emptyColumn(type: ColumnType): ColumnValues {
  switch (type) {
    case 'string':
      return [];
    case 'list_int32':
      return { offsets: new Int32Array(1), values: new Int32Array(0) };
    case 'int8':
      return new Int8Array(0);
    case 'int32':
      return new Int32Array(0);
    case 'float32':
      return new Float32Array(0);
    case 'int64':
    case 'float64':
      return new Float64Array(0);
  }
}
