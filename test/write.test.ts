import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tableFromIPC, Type, type Table } from 'apache-arrow';
import { DataError } from '../src/base/errors.js';
import {
  formatFromPath,
  withDuckDB,
  writeTable,
  type ColumnBatch,
  type ColumnDef,
  type TableFormat,
} from '../src/data/write.js';

const SCHEMA: ColumnDef[] = [
  { name: 'i8', type: 'int8' },
  { name: 'i32', type: 'int32' },
  { name: 'i64', type: 'int64' },
  { name: 'f32', type: 'float32' },
  { name: 'f64', type: 'float64' },
  { name: 's', type: 'string' },
  { name: 'lst', type: 'list_int32' },
];

interface Rows {
  i8: number[];
  i32: number[];
  i64: bigint[];
  f32: number[];
  f64: number[];
  s: string[];
  lst: number[][];
}

const STRINGS = ['exposure', 'a,b', 'two\nlines', 'say "hi"', 'ünïcødé ✓', '', ' padded ', 'prerank_candidate'];

/** A deterministic batch of n rows starting at global row `start`; int64 as Float64Array or BigInt64Array. */
function makeBatch(start: number, n: number, bigints: boolean, offsetBase = 0): { batch: ColumnBatch; rows: Rows } {
  const rows: Rows = { i8: [], i32: [], i64: [], f32: [], f64: [], s: [], lst: [] };
  const i8 = new Int8Array(n);
  const i32 = new Int32Array(n);
  const i64f = new Float64Array(n);
  const i64b = new BigInt64Array(n);
  const f32 = new Float32Array(n);
  const f64 = new Float64Array(n);
  const s: string[] = [];
  const offsets = new Int32Array(n + 1);
  const values: number[] = [];
  for (let k = 0; k < offsetBase; k++) values.push(-999); // leading values the offsets skip
  offsets[0] = values.length;
  for (let i = 0; i < n; i++) {
    const g = start + i;
    i8[i] = (g % 256) - 128;
    i32[i] = (g * 2654435761) | 0;
    const big = g % 3 === 0 ? 2 ** 40 + g : g % 3 === 1 ? -(2 ** 33) - g : g;
    i64f[i] = big;
    i64b[i] = BigInt(big);
    f32[i] = Math.fround(Math.sin(g) * 1000.123);
    f64[i] = Math.cos(g) / 7 + g * 1e-9;
    s.push(STRINGS[g % STRINGS.length]! + (g % 11 === 0 ? String(g) : ''));
    const len = g % 5 === 0 ? 0 : g % 4; // many empty lists
    const list: number[] = [];
    for (let j = 0; j < len; j++) list.push(((g * 31 + j * 7) % 1000) - 500);
    values.push(...list);
    offsets[i + 1] = values.length;
    rows.i8.push(i8[i]!);
    rows.i32.push(i32[i]!);
    rows.i64.push(BigInt(big));
    rows.f32.push(f32[i]!);
    rows.f64.push(f64[i]!);
    rows.s.push(s[i]!);
    rows.lst.push(list);
  }
  const batch: ColumnBatch = {
    length: n,
    columns: {
      i8,
      i32,
      i64: bigints ? i64b : i64f,
      f32,
      f64,
      s,
      lst: { offsets, values: Int32Array.from(values) },
    },
  };
  return { batch, rows };
}

/** Three batches (one empty, lists crossing DuckDB's 2048-row chunks, CSR offsets not starting at 0). */
function sample(): { batches: ColumnBatch[]; rows: Rows } {
  const a = makeBatch(0, 3000, false);
  const b = makeBatch(3000, 0, true);
  const c = makeBatch(3000, 2500, true, 5);
  const rows: Rows = { i8: [], i32: [], i64: [], f32: [], f64: [], s: [], lst: [] };
  for (const part of [a.rows, b.rows, c.rows]) {
    for (const k of Object.keys(rows) as (keyof Rows)[]) (rows[k] as unknown[]).push(...(part[k] as unknown[]));
  }
  return { batches: [a.batch, b.batch, c.batch], rows };
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'resflow-write-test-'));
}

function assertRows(actual: Rows, expected: Rows, label: string): void {
  assert.equal(actual.i8.length, expected.i8.length, `${label}: row count`);
  assert.deepEqual(actual.i8, expected.i8, `${label}: int8`);
  assert.deepEqual(actual.i32, expected.i32, `${label}: int32`);
  assert.deepEqual(actual.i64, expected.i64, `${label}: int64`);
  assert.deepEqual(actual.f32, expected.f32, `${label}: float32`);
  assert.deepEqual(actual.f64, expected.f64, `${label}: float64`);
  assert.deepEqual(actual.s, expected.s, `${label}: string`);
  assert.deepEqual(actual.lst, expected.lst, `${label}: list_int32`);
}

async function readWithDuckDB(sql: string): Promise<Rows> {
  return withDuckDB(async (con) => {
    const cols = (await con.runAndReadAll(sql)).getColumnsObjectJS();
    return {
      i8: cols.i8!.map(Number),
      i32: cols.i32!.map(Number),
      i64: cols.i64!.map((v) => BigInt(v as bigint)),
      f32: cols.f32!.map(Number),
      f64: cols.f64!.map(Number),
      s: cols.s!.map((v) => v as string),
      lst: cols.lst!.map((v) => (v as number[]).map(Number)),
    };
  });
}

function readArrow(table: Table): Rows {
  const col = (name: string) => {
    const v = table.getChild(name);
    assert.ok(v, `column ${name} present`);
    return v;
  };
  const lst = col('lst');
  const out: number[][] = [];
  for (let i = 0; i < table.numRows; i++) out.push(Array.from(lst.get(i)?.toArray() ?? []) as number[]);
  return {
    i8: Array.from(col('i8').toArray() as Int8Array),
    i32: Array.from(col('i32').toArray() as Int32Array),
    i64: Array.from(col('i64').toArray() as BigInt64Array),
    f32: Array.from(col('f32').toArray() as Float32Array),
    f64: Array.from(col('f64').toArray() as Float64Array),
    s: Array.from({ length: table.numRows }, (_, i) => col('s').get(i) as string),
    lst: out,
  };
}

test('formatFromPath maps extensions and rejects unknown ones', () => {
  assert.equal(formatFromPath('a/b.parquet'), 'parquet');
  assert.equal(formatFromPath('x.PQ'), 'parquet');
  assert.equal(formatFromPath('x.arrow'), 'arrow');
  assert.equal(formatFromPath('x.feather'), 'arrow');
  assert.equal(formatFromPath('x.ipc'), 'arrow');
  assert.equal(formatFromPath('x.csv'), 'csv');
  assert.throws(
    () => formatFromPath('data/table.json'),
    (e: unknown) => e instanceof DataError && /table\.json/.test(e.message) && /\.parquet/.test(e.message) && /\.arrow/.test(e.message),
  );
  assert.throws(() => formatFromPath('noext'), DataError);
});

test('parquet round-trips every column type, with zstd and the requested row groups', async () => {
  const dir = tempDir();
  try {
    const { batches, rows } = sample();
    const file = join(dir, 'out.parquet');
    const res = await writeTable(file, SCHEMA, batches, { rowGroupSize: 2048 });
    assert.equal(res.rows, 5500);
    const back = await readWithDuckDB(`SELECT * FROM read_parquet('${file}')`);
    assertRows(back, rows, 'parquet');
    await withDuckDB(async (con) => {
      const types = (await con.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet('${file}')`)).getRowObjectsJS();
      assert.deepEqual(
        types.map((r) => [r.column_name, r.column_type]),
        [
          ['i8', 'TINYINT'],
          ['i32', 'INTEGER'],
          ['i64', 'BIGINT'],
          ['f32', 'FLOAT'],
          ['f64', 'DOUBLE'],
          ['s', 'VARCHAR'],
          ['lst', 'INTEGER[]'],
        ],
      );
      const meta = (
        await con.runAndReadAll(
          `SELECT count(DISTINCT row_group_id) AS groups, max(row_group_num_rows) AS biggest, min(compression) AS lo, max(compression) AS hi FROM parquet_metadata('${file}')`,
        )
      ).getRowObjectsJS()[0]!;
      assert.equal(Number(meta.groups), 3); // 2048 + 2048 + 1404
      assert.equal(Number(meta.biggest), 2048);
      assert.equal(meta.lo, 'ZSTD');
      assert.equal(meta.hi, 'ZSTD');
    });
    assert.deepEqual(readdirSync(dir), ['out.parquet'], 'no temporary files left behind');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('parquet honours other compressions; an async iterable of batches works', async () => {
  const dir = tempDir();
  try {
    const { batches, rows } = sample();
    async function* gen() {
      for (const b of batches) {
        await new Promise((r) => setTimeout(r, 1));
        yield b;
      }
    }
    const file = join(dir, 'snappy.pq');
    const res = await writeTable(file, SCHEMA, gen(), { compression: 'snappy' });
    assert.equal(res.rows, 5500);
    assertRows(await readWithDuckDB(`SELECT * FROM read_parquet('${file}')`), rows, 'snappy parquet');
    await withDuckDB(async (con) => {
      const c = (await con.runAndReadAll(`SELECT DISTINCT compression FROM parquet_metadata('${file}')`)).getRowsJS();
      assert.deepEqual(c, [['SNAPPY']]);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('arrow IPC file round-trips every column type with a real List<Int32>', async () => {
  const dir = tempDir();
  try {
    const { batches, rows } = sample();
    const file = join(dir, 'out.arrow');
    const res = await writeTable(file, SCHEMA, batches);
    assert.equal(res.rows, 5500);
    const bytes = readFileSync(file);
    assert.equal(bytes.subarray(0, 6).toString('latin1'), 'ARROW1', 'Arrow file format magic');
    const table = tableFromIPC(bytes);
    assert.equal(table.numRows, 5500);
    const lstType = table.schema.fields.find((f) => f.name === 'lst')!.type;
    assert.equal(lstType.typeId, Type.List);
    assert.equal(lstType.children[0]!.type.typeId, Type.Int);
    assert.equal(lstType.children[0]!.type.bitWidth, 32);
    assert.equal(table.schema.fields.find((f) => f.name === 'i64')!.type.typeId, Type.Int);
    assert.equal(table.schema.fields.find((f) => f.name === 's')!.type.typeId, Type.Utf8);
    assertRows(readArrow(table), rows, 'arrow');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('csv round-trips every column type (read back with DuckDB)', async () => {
  const dir = tempDir();
  try {
    const { batches, rows } = sample();
    const file = join(dir, 'out.csv');
    const res = await writeTable(file, SCHEMA, batches);
    assert.equal(res.rows, 5500);
    const back = await readWithDuckDB(
      `SELECT i8::TINYINT AS i8, i32::INTEGER AS i32, i64::BIGINT AS i64, f32::FLOAT AS f32, f64::DOUBLE AS f64,
              coalesce(s, '') AS s, lst::INTEGER[] AS lst
       FROM read_csv('${file}', header = true, all_varchar = true)`,
    );
    assertRows(back, rows, 'csv');
    const header = readFileSync(file, 'utf8').split('\n')[0];
    assert.equal(header, 'i8,i32,i64,f32,f64,s,lst');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a table with no rows is still a valid file', async () => {
  const dir = tempDir();
  try {
    for (const format of ['parquet', 'arrow', 'csv'] as TableFormat[]) {
      const file = join(dir, `empty.${format}`);
      const res = await writeTable(file, SCHEMA, [], { format });
      assert.equal(res.rows, 0);
      if (format === 'arrow') {
        const t = tableFromIPC(readFileSync(file));
        assert.equal(t.numRows, 0);
        assert.deepEqual(
          t.schema.fields.map((f) => f.name),
          SCHEMA.map((c) => c.name),
        );
      } else if (format === 'parquet') {
        await withDuckDB(async (con) => {
          const n = (await con.runAndReadAll(`SELECT count(*) FROM read_parquet('${file}')`)).getRowsJS()[0]![0];
          assert.equal(Number(n), 0);
        });
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

for (const format of ['parquet', 'arrow', 'csv'] as TableFormat[]) {
  test(`${format}: an error mid-stream leaves neither the target nor a temporary file, and keeps an old target`, async () => {
    const dir = tempDir();
    try {
      const file = join(dir, `t.${format}`);
      const { batches } = sample();
      function* failing() {
        yield batches[0]!;
        throw new Error('boom');
      }
      await assert.rejects(writeTable(file, SCHEMA, failing(), { format }), /boom/);
      assert.deepEqual(readdirSync(dir), [], 'nothing left behind');

      // a bad batch (missing column) is a DataError; an existing file stays as it was
      writeFileSync(file, 'old content');
      const bad: ColumnBatch = { length: 2, columns: { i8: new Int8Array(2) } };
      await assert.rejects(
        writeTable(file, SCHEMA, [bad], { format }),
        (e: unknown) => e instanceof DataError && /i32/.test(e.message),
      );
      assert.deepEqual(readdirSync(dir), [`t.${format}`]);
      assert.equal(readFileSync(file, 'utf8'), 'old content');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('bad input is refused with DataError', async () => {
  const dir = tempDir();
  try {
    const file = join(dir, 'x.parquet');
    const one = (columns: ColumnBatch['columns'], length = 1) => [{ length, columns }];
    const schema: ColumnDef[] = [{ name: 'a', type: 'int64' }];
    await assert.rejects(writeTable(file, schema, one({ a: new Float64Array([1.5]) })), DataError);
    await assert.rejects(writeTable(file, schema, one({ a: new Float64Array([1, 2]) })), DataError);
    await assert.rejects(writeTable(file, [], []), DataError);
    await assert.rejects(
      writeTable(file, [{ name: 'l', type: 'list_int32' }], one({ l: { offsets: new Int32Array([0, 3]), values: new Int32Array(2) } })),
      DataError,
    );
    await assert.rejects(
      writeTable(file, [{ name: 'a', type: 'int8' }, { name: 'a', type: 'int8' }], []),
      DataError,
    );
    await assert.rejects(writeTable(join(dir, 'x.txt'), schema, []), DataError);
    assert.deepEqual(readdirSync(dir), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('numeric columns given as another typed array are converted', async () => {
  const dir = tempDir();
  try {
    const file = join(dir, 'conv.arrow');
    const schema: ColumnDef[] = [
      { name: 'a', type: 'float32' },
      { name: 'b', type: 'int64' },
      { name: 'c', type: 'int8' },
    ];
    await writeTable(file, schema, [
      { length: 3, columns: { a: new Float64Array([0.1, 2, -3]), b: new Int32Array([1, -2, 3]), c: new Int32Array([1, 0, -1]) } },
    ]);
    const t = tableFromIPC(readFileSync(file));
    assert.deepEqual(Array.from(t.getChild('a')!.toArray() as Float32Array), [Math.fround(0.1), 2, -3]);
    assert.deepEqual(Array.from(t.getChild('b')!.toArray() as BigInt64Array), [1n, -2n, 3n]);
    assert.deepEqual(Array.from(t.getChild('c')!.toArray() as Int8Array), [1, 0, -1]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('withDuckDB returns the result and passes errors through', async () => {
  const v = await withDuckDB(async (con) => (await con.runAndReadAll('SELECT 41 + 1 AS x')).getRowsJS()[0]![0]);
  assert.equal(v, 42);
  await assert.rejects(
    withDuckDB(async (con) => {
      await con.run('SELECT * FROM no_such_table');
    }),
    /no_such_table/,
  );
});
