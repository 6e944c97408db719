import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { writeTable, type ColumnDef } from '../src/data/write.js';
import { checkColumns, readBatches, tableInfo, type RawColumn } from '../src/data/reader.js';
import { BatchEncoder, buildFeaturePlan, encodedBatches, openSplit } from '../src/data/encode.js';
import { expandFiles } from '../src/data/files.js';
import { hashId, featureSeed } from '../src/data/hash.js';
import { loadConfig } from '../src/config/load.js';
import { DataError } from '../src/base/errors.js';
import { tempDir, writeFile } from './helpers/fixtures.js';

const schema: ColumnDef[] = [
  { name: 'request_id', type: 'int64' },
  { name: 'item', type: 'string' },
  { name: 'cat', type: 'int32' },
  { name: 'hist', type: 'list_int32' },
  { name: 'price', type: 'float32' },
  { name: 'stage', type: 'string' },
  { name: 'click', type: 'int8' },
];

/** n rows with known values: request i/3, item "it<i%7>", cat i%5, hist [0..i%4), price i/10. */
function rows(n: number) {
  const offsets = new Int32Array(n + 1);
  const values: number[] = [];
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < i % 4; j++) values.push(j + i);
    offsets[i + 1] = values.length;
  }
  return {
    length: n,
    columns: {
      request_id: Float64Array.from({ length: n }, (_, i) => Math.floor(i / 3)),
      item: Array.from({ length: n }, (_, i) => `it${i % 7}`),
      cat: Int32Array.from({ length: n }, (_, i) => i % 5),
      hist: { offsets, values: Int32Array.from(values) },
      price: Float32Array.from({ length: n }, (_, i) => i / 10),
      stage: Array.from({ length: n }, (_, i) => ['exposure', 'ranking_candidate', 'prerank_candidate'][i % 3]!),
      click: Int8Array.from({ length: n }, (_, i) => (i % 6 === 0 ? 1 : 0)),
    },
  };
}

async function readAll(file: string, batchRows: number) {
  const info = await tableInfo(file);
  const wanted = [
    { name: 'request_id', kind: 'id' as const },
    { name: 'item', kind: 'id' as const },
    { name: 'hist', kind: 'list' as const },
    { name: 'price', kind: 'number' as const },
  ];
  const out: { req: number[]; item: string[]; hist: number[][]; price: number[]; batches: number[] } = { req: [], item: [], hist: [], price: [], batches: [] };
  for await (const b of readBatches(info, wanted, batchRows)) {
    out.batches.push(b.length);
    const req = b.columns.get('request_id') as Extract<RawColumn, { type: 'number' }>;
    const item = b.columns.get('item') as Extract<RawColumn, { type: 'string' }>;
    const hist = b.columns.get('hist') as Extract<RawColumn, { type: 'list' }>;
    const price = b.columns.get('price') as Extract<RawColumn, { type: 'number' }>;
    for (let i = 0; i < b.length; i++) {
      out.req.push(req.values[i]!);
      out.item.push(item.values[i]!);
      out.hist.push(Array.from((hist.values as Float64Array).subarray(hist.offsets[i]!, hist.offsets[i + 1]!)));
      out.price.push(price.values[i]!);
    }
  }
  return { info, ...out };
}

for (const ext of ['parquet', 'arrow']) {
  test(`${ext}: streams batches of typed arrays with list columns, exact values`, async () => {
    const dir = tempDir();
    const file = path.join(dir, `t.${ext}`);
    await writeTable(file, schema, [rows(2500), rows(1500)]);
    const r = await readAll(file, 1000);
    assert.equal(r.info.rows, 4000);
    assert.deepEqual(r.batches, [1000, 1000, 1000, 1000]);
    const expected = rows(2500);
    for (const i of [0, 1, 5, 999, 1000, 2499]) {
      assert.equal(r.req[i], Math.floor(i / 3));
      assert.equal(r.item[i], `it${i % 7}`);
      assert.deepEqual(r.hist[i], Array.from({ length: i % 4 }, (_, j) => j + i));
      assert.ok(Math.abs(r.price[i]! - expected.columns.price[i]!) < 1e-6);
    }
    // second written batch starts again at row 0's values
    assert.equal(r.item[2500], 'it0');
    assert.deepEqual(r.hist[2503], [3, 4, 5]);
  });
}

test('the same ids hash to the same buckets from Parquet and Arrow', async () => {
  const dir = tempDir();
  await writeTable(path.join(dir, 'a.parquet'), schema, [rows(300)]);
  await writeTable(path.join(dir, 'a.arrow'), schema, [rows(300)]);
  const cfgFor = (file: string) =>
    writeFile(dir, `c-${path.extname(file).slice(1)}.yaml`, `data:\n  train: ${file}\n  columns: { request: request_id, stage: stage, labels: { click: click } }\nfeatures:\n  - { name: item, buckets: 97 }\n  - { name: cat, buckets: 11 }\n  - { name: hist, type: list, buckets: 13, max_len: 2 }\n  - { name: price, type: numeric }\ntasks: [{ name: ctr, label: click }]\neval: { metrics: [auc] }\n`);
  const encoded = [];
  for (const f of ['a.parquet', 'a.arrow']) {
    const { config } = loadConfig(cfgFor(path.join(dir, f)));
    const plan = buildFeaturePlan(config);
    const enc = new BatchEncoder(config, plan);
    const opened = await openSplit(config, 'train');
    for await (const b of encodedBatches(config, enc, opened, 1000)) encoded.push(b);
  }
  const [p, a] = encoded;
  assert.deepEqual(Array.from(p!.ids[0]!), Array.from(a!.ids[0]!));
  assert.deepEqual(Array.from(p!.ids[2]!), Array.from(a!.ids[2]!));
  assert.equal(p!.ids[0]![3], hashId('it3', featureSeed('item')) % 97);
  // list feature: row 3 has [3, 4, 5] cut to max_len 2; row 1 has [1] then padding -1
  assert.deepEqual(Array.from(p!.ids[2]!.subarray(2, 4)), [hashId(1, featureSeed('hist')) % 13, -1]);
  assert.deepEqual(Array.from(p!.stage.subarray(0, 3)), [0, 1, 2]);
  assert.deepEqual(Array.from(p!.labels.get('exposure')!.subarray(0, 3)), [1, 0, 0]);
  assert.equal(p!.request![5], 1);
});

test('an integer id and its decimal string hash alike', () => {
  assert.equal(hashId(123456789012, 5), hashId('123456789012', 5));
  assert.notEqual(hashId(1, 5), hashId(2, 5));
  assert.notEqual(hashId('a', 1), hashId('a', 2));
});

test('a missing or mistyped column is an error naming the column and the file', async () => {
  const dir = tempDir();
  const file = path.join(dir, 't.parquet');
  await writeTable(file, schema, [rows(10)]);
  const info = await tableInfo(file);
  assert.throws(() => checkColumns(info, [{ name: 'purchase', kind: 'number', role: 'label purchase' }]), (e: unknown) => e instanceof DataError && /t\.parquet: missing column `purchase` \(label purchase\)/.test(e.message));
  assert.throws(() => checkColumns(info, [{ name: 'item', kind: 'number', role: 'feature item' }]), /column `item` \(feature item\) has type VARCHAR, expected a numeric column/);
  assert.throws(() => checkColumns(info, [{ name: 'price', kind: 'list', role: 'feature price' }]), /expected a list column/);
});

for (const ext of ['parquet', 'arrow']) {
  test(`${ext}: a truncated file is an error, never a short read`, async () => {
    const dir = tempDir();
    const file = path.join(dir, `t.${ext}`);
    await writeTable(file, schema, [rows(50_000)], ext === 'parquet' ? { rowGroupSize: 5000 } : {});
    const bytes = readFileSync(file);
    const cut = path.join(dir, `cut.${ext}`);
    writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    await assert.rejects(async () => {
      const r = await readAll(cut, 4096);
      assert.fail(`read ${r.req.length} rows from a truncated file`);
    }, (e: unknown) => e instanceof DataError && e.message.includes(cut));
  });

  test(`${ext}: an empty file is a clear error`, async () => {
    const dir = tempDir();
    const file = path.join(dir, `empty.${ext}`);
    writeFileSync(file, '');
    await assert.rejects(() => tableInfo(file), (e: unknown) => e instanceof DataError && e.message.includes(file) && /not a readable/.test(e.message));
  });
}

test('a label column with a value other than 0/1 is an error naming column, file and row', async () => {
  const dir = tempDir();
  const file = path.join(dir, 'bad.parquet');
  const b = rows(20);
  b.columns.click[7] = 2; // the 8th row: errors count rows from 1
  await writeTable(file, schema, [b]);
  const cfg = writeFile(dir, 'c.yaml', `data:\n  train: ${file}\n  columns: { labels: { click: click } }\nfeatures: [{ name: cat, buckets: 5 }]\ntasks: [{ name: ctr, label: click }]\neval: { metrics: [auc] }\n`);
  const { config } = loadConfig(cfg);
  const enc = new BatchEncoder(config, buildFeaturePlan(config));
  await assert.rejects(async () => {
    for await (const _ of encodedBatches(config, enc, await openSplit(config, 'train'))) void _;
  }, /bad\.parquet: column `click` \(label click\) holds 2 at row 8; expected 0 or 1/);
});

test('globs expand in sorted order; a glob without matches is an error', () => {
  const dir = tempDir();
  for (const n of ['b.parquet', 'a.parquet', 'c.txt']) writeFile(dir, n, 'x');
  assert.deepEqual(expandFiles(path.join(dir, '*.parquet'), 'data.train').map((f) => path.basename(f)), ['a.parquet', 'b.parquet']);
  assert.throws(() => expandFiles(path.join(dir, '*.arrow'), 'data.train'), /data\.train: no file matches/);
  assert.throws(() => expandFiles(path.join(dir, 'nope.parquet'), 'data.train'), /data\.train: file not found/);
});

test('Parquet and Arrow IPC readers agree on every value, across record batches and read batches', async () => {
  const dir = tempDir();
  const data = [rows(3001), rows(777), rows(4096)];
  await writeTable(path.join(dir, 'x.parquet'), schema, data, { rowGroupSize: 1000 });
  await writeTable(path.join(dir, 'x.arrow'), schema, data);
  const p = await readAll(path.join(dir, 'x.parquet'), 1234);
  const a = await readAll(path.join(dir, 'x.arrow'), 1234);
  assert.equal(p.req.length, 3001 + 777 + 4096);
  assert.deepEqual(a.req, p.req);
  assert.deepEqual(a.item, p.item);
  assert.deepEqual(a.hist, p.hist);
  assert.deepEqual(a.price, p.price);
  const expectedReq = data.flatMap((d) => Array.from(d.columns.request_id));
  assert.deepEqual(p.req, expectedReq);
});
