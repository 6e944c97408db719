/**
 * The embedding tables' optimizer state, allocated per row on first touch (src/kernels/row-state.ts,
 * README.md "Sparse embeddings"): the same updates as eagerly allocated state (checked against an
 * eager reference written here and against Adam worked out by hand), nothing allocated for rows
 * no update touches, and checkpoints that carry the state across a save and load, including the
 * eager layout of checkpoints written before.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Rng } from '../src/base/rng.js';
import { RowState, MIN_SLOTS } from '../src/kernels/row-state.js';
import { createSparseKernels, JsSparseKernels, sparseStep, type SparseKernels, type TableData } from '../src/kernels/sparse-kernels.js';
import type { EmbeddingOptimizerConfig } from '../src/config/experiment.js';
import { loadExperiment } from '../src/app/load-experiment.js';
import { buildFeaturePlan, type EncodedBatch } from '../src/data/encode.js';
import { EmbeddingTables } from '../src/models/embeddings.js';
import { ParamStore } from '../src/models/layers.js';
import { loadModel, modelFiles, type ModelFiles } from '../src/runs/model-io.js';
import { fileRecord } from '../src/runs/integrity.js';
import { tempDir, tinyConfigYaml, writeFile } from './helpers/fixtures.js';

const adam: EmbeddingOptimizerConfig = { type: 'adam', lr: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-7, initial_accumulator: 0.1 };
const adagrad: EmbeddingOptimizerConfig = { ...adam, type: 'adagrad', lr: 0.05 };
const preferred = createSparseKernels();
const kernelSets: SparseKernels[] = preferred.name === 'native' ? [new JsSparseKernels(), preferred] : [new JsSparseKernels()];

function table(rows: number, dim: number, o: EmbeddingOptimizerConfig, width = 1, mean = false, weights?: Float32Array, inPlace = true): TableData {
  return {
    weights: weights ?? new Float32Array(rows * dim),
    state: new RowState(rows, dim, o.type === 'adam' ? 2 : 1, o.type === 'adagrad' ? o.initial_accumulator : 0, inPlace),
    rows,
    dim,
    width,
    mean,
    offset: 0,
  };
}

const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);

for (const kernels of kernelSets) {
  test(`${kernels.name} kernels: two lazy Adam steps on a 3 x 2 table equal the update worked out by hand; row 1 is never touched and holds no state`, () => {
    const w0 = [0.5, -0.25, 0.125, 0.75, -0.5, 0.25];
    const t = table(3, 2, adam, 1, false, Float32Array.from(w0));
    // step 1: examples touch rows 2, 2 (summed gradient (0.3, -0.1)); step 2: rows 0 and 2
    kernels.update([t], [Int32Array.from([2, 2])], 2, Float32Array.from([0.1, -0.3, 0.2, 0.2]), 2, sparseStep(adam, 1));
    assert.equal(t.state!.used, 1);
    assert.deepEqual([...t.state!.slotOf], [0, 0, 1], 'row 2 takes the first slot');
    kernels.update([t], [Int32Array.from([0, 2])], 2, Float32Array.from([0.4, 0.05, -0.2, 0.6]), 2, sparseStep(adam, 2));
    assert.equal(t.state!.used, 2);
    assert.deepEqual([...t.state!.slotOf], [2, 0, 1], 'row 0 takes the second slot, row 1 none');
    // by hand: lr_t(s) = lr sqrt(1 - b2^s) / (1 - b1^s), eps_hat(s) = eps sqrt(1 - b2^s)
    const lrT = (s: number) => (0.01 * Math.sqrt(1 - 0.999 ** s)) / (1 - 0.9 ** s);
    const epsHat = (s: number) => 1e-7 * Math.sqrt(1 - 0.999 ** s);
    // row 2: g1 = (0.3, -0.1), g2 = (-0.2, 0.6): m1 = 0.1 g1, v1 = 0.001 g1², m2 = 0.9 m1 + 0.1 g2, v2 = 0.999 v1 + 0.001 g2²
    // row 0: only step 2: g = (0.4, 0.05): m = 0.1 g, v = 0.001 g² with step 2's corrections
    const g1 = [0.3, -0.1];
    const g2 = [-0.2, 0.6];
    for (let d = 0; d < 2; d++) {
      const m1 = 0.1 * g1[d]!;
      const v1 = 0.001 * g1[d]! ** 2;
      const w1 = w0[4 + d]! - (lrT(1) * m1) / (Math.sqrt(v1) + epsHat(1));
      const m2 = 0.9 * m1 + 0.1 * g2[d]!;
      const v2 = 0.999 * v1 + 0.001 * g2[d]! ** 2;
      close(t.weights[4 + d]!, w1 - (lrT(2) * m2) / (Math.sqrt(v2) + epsHat(2)), `w[2,${d}]`);
      const s2 = t.state!.rowState(2);
      close(s2[d]!, m2, `m[2,${d}]`);
      close(s2[2 + d]!, v2, `v[2,${d}]`);
      const g = [0.4, 0.05][d]!;
      close(t.weights[d]!, w0[d]! - (lrT(2) * 0.1 * g) / (Math.sqrt(0.001 * g * g) + epsHat(2)), `w[0,${d}]`);
      assert.equal(t.weights[2 + d], Math.fround(w0[2 + d]!), 'row 1 keeps its weight');
    }
    assert.deepEqual([...t.state!.rowState(1)], [0, 0, 0, 0], 'an untouched row reads as zero moments');
  });
}

/**
 * The eager reference: dense moments of rows x dim allocated up front, gradients summed per row in
 * example order, the kernels' arithmetic (doubles, float32 stores) on each touched row.
 */
class EagerReference {
  readonly w: Float32Array;
  readonly m: Float32Array;
  readonly v: Float32Array;
  constructor(readonly t: TableData, readonly o: EmbeddingOptimizerConfig) {
    this.w = Float32Array.from(t.weights);
    this.m = new Float32Array(t.rows * t.dim).fill(o.type === 'adagrad' ? o.initial_accumulator : 0);
    this.v = new Float32Array(t.rows * t.dim);
  }
  update(ids: Int32Array, n: number, gradX: Float32Array, D: number, step: number): void {
    const { t, o } = this;
    const sums = new Map<number, Float32Array>();
    for (let i = 0; i < n; i++) {
      const present = Array.from({ length: t.width }, (_, j) => ids[i * t.width + j]!).filter((r) => r >= 0);
      const scale = t.mean ? 1 / present.length : 1;
      for (const r of present) {
        const acc = sums.get(r) ?? new Float32Array(t.dim);
        sums.set(r, acc);
        for (let d = 0; d < t.dim; d++) acc[d]! += gradX[i * D + t.offset + d]! * scale;
      }
    }
    const s = sparseStep(o, step);
    for (const [r, g] of sums) {
      for (let d = 0; d < t.dim; d++) {
        const i = r * t.dim + d;
        if (o.type === 'adam') {
          const m = o.beta1 * this.m[i]! + (1 - o.beta1) * g[d]!;
          const v = o.beta2 * this.v[i]! + (1 - o.beta2) * g[d]! * g[d]!;
          this.m[i] = m;
          this.v[i] = v;
          this.w[i] = this.w[i]! - (s.lrT * m) / (Math.sqrt(v) + s.epsHat);
        } else {
          this.m[i]! += g[d]! * g[d]!;
          this.w[i] = this.w[i]! - (o.lr * g[d]!) / (Math.sqrt(this.m[i]!) + o.epsilon);
        }
      }
    }
  }
}

function sameBits(a: ArrayLike<number>, b: ArrayLike<number>, what: string): void {
  assert.equal(a.length, b.length, what);
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) assert.fail(`${what}: element ${i} is ${a[i]} against ${b[i]}`);
}

for (const kernels of kernelSets) {
  for (const [o, inPlace] of [[adam, true], [adagrad, true], [adam, false], [adagrad, false]] as const) {
    test(`${kernels.name} kernels, ${o.type}, state growing ${inPlace ? 'in place' : 'by copying'}: 40 steps with lazily allocated state give the eager reference's bits; growth by half; untouched rows hold none`, () => {
      const rng = new Rng(17);
      // a single-id table and a mean-pooled list table (padding -1), 3,000 rows each, hot rows 0..99
      const shapes = [
        { rows: 3000, dim: 6, width: 1, mean: false },
        { rows: 3000, dim: 4, width: 3, mean: true },
      ];
      let offset = 0;
      const tables = shapes.map((s) => {
        const t = table(s.rows, s.dim, o, s.width, s.mean, Float32Array.from({ length: s.rows * s.dim }, () => rng.next() - 0.5), inPlace);
        assert.equal(t.state!.growsInPlace, inPlace);
        t.offset = offset;
        offset += s.dim;
        return t;
      });
      const D = offset;
      const eager = tables.map((t) => new EagerReference(t, o));
      const touched = tables.map(() => new Set<number>());
      const capacities = tables.map(() => new Set<number>());
      for (let step = 1; step <= 40; step++) {
        const n = 64;
        const ids = tables.map((t, k) =>
          Int32Array.from({ length: n * t.width }, () => {
            const u = rng.next();
            const r = u < 0.1 ? -1 : u < 0.5 ? rng.int(100) : 100 + rng.int(1900); // rows 2000.. are never touched
            if (r >= 0) touched[k]!.add(r);
            return r;
          }),
        );
        const gradX = Float32Array.from({ length: n * D }, () => (rng.next() - 0.5) * 0.2);
        kernels.update(tables, ids, n, gradX, D, sparseStep(o, step));
        eager.forEach((e, k) => e.update(ids[k]!, n, gradX, D, step));
        tables.forEach((t, k) => capacities[k]!.add(t.state!.capacity));
      }
      tables.forEach((t, k) => {
        const st = t.state!;
        sameBits(t.weights, eager[k]!.w, `table ${k} weights`);
        assert.equal(st.used, touched[k]!.size, `table ${k}: one slot per distinct touched row`);
        for (let r = 0; r < t.rows; r++) {
          assert.equal(st.slotOf[r] !== 0, touched[k]!.has(r), `table ${k} row ${r} holds state iff touched`);
          const dense = Float32Array.from([...eager[k]!.m.subarray(r * t.dim, (r + 1) * t.dim), ...(o.type === 'adam' ? eager[k]!.v.subarray(r * t.dim, (r + 1) * t.dim) : [])]);
          sameBits(st.rowState(r), dense, `table ${k} row ${r} state`);
        }
        // capacity grew 1,024, 1,536, 2,304: by half each time, ahead of the rows a step could add (64 x width)
        const seen = [...capacities[k]!];
        assert.deepEqual(seen, [MIN_SLOTS, 1536, 2304].slice(0, seen.length));
        assert.ok(st.used > MIN_SLOTS && st.used <= st.capacity, `table ${k}: ${st.used} rows, capacities ${seen}`);
      });
    });
  }
}

/**
 * A page of memory read before its first write is mapped to the kernel's shared zero page, and the
 * write then faults a second time (with a TLB shootdown across threads): lazy state once paid that on
 * every new slot's page and every page of the index (README.md, "What fits in 24 GiB"). Counted with
 * the process's minor page faults: the first update of 50,000 rows spread over a fresh 1.2M-row
 * table must fault about once per page of new state, not twice, and not on the index's 1,172 pages.
 * Measured here: 393-394 faults for 392 pages; with the moments read first 1,058 (JavaScript), with
 * the index not written through 2,667-2,922. (With transparent huge pages always on, every count is
 * far lower; the bound still holds.)
 */
for (const kernels of kernelSets) {
  test(`${kernels.name} kernels: new Adam state and the index are not read before their first write (page faults counted)`, () => {
    const rows = 1_200_000;
    const dim = 4;
    const n = 50_000;
    const make = () => table(rows, dim, adam, 1, false, new Float32Array(rows * dim).fill(0.01));
    const ids = Int32Array.from({ length: n }, (_, i) => i * 24);
    const grad = new Float32Array(n * dim).fill(0.5);
    // the kernels' working buffers are sized by the first call: made here, on another table
    kernels.update([make()], [ids], n, grad, dim, sparseStep(adam, 1));
    const t = make();
    t.state!.reserve(n);
    const before = process.resourceUsage().minorPageFault;
    kernels.update([t], [ids], n, grad, dim, sparseStep(adam, 1));
    const faults = process.resourceUsage().minorPageFault - before;
    const statePages = Math.ceil((n * dim * 4) / 4096) * 2; // m and v
    assert.equal(t.state!.used, n);
    assert.ok(faults <= 1.5 * statePages + 100, `${faults} minor page faults for ${statePages} pages of new state (reading before writing doubles them; the index adds ${Math.ceil((rows * 4) / 4096)})`);
  });
}

test('a million-row table touched at 100 rows holds state for 100 rows in one first allocation; SGD holds none', () => {
  const t = table(1_000_000, 16, adam);
  const ids = Int32Array.from({ length: 300 }, (_, i) => (i * 7919) % 100 * 10_007); // 100 distinct rows, each 3 times
  new JsSparseKernels().update([t], [ids], 300, new Float32Array(300 * 16).fill(0.01), 16, sparseStep(adam, 1));
  const st = t.state!;
  assert.equal(st.used, 100);
  assert.equal(st.slotOf.reduce((c, s) => c + (s !== 0 ? 1 : 0), 0), 100);
  assert.equal(st.capacity, MIN_SLOTS);
  assert.equal(st.bytes, 4 * 1_000_000 + MIN_SLOTS * 16 * 4 * 2, 'index + 1,024 slots of m and v, not 1,000,000 rows of each');
  const sgd = new EmbeddingTables(buildFeaturePlan(tinyConfig()), new Rng(1, 1), { ...adam, type: 'sgd' });
  assert.ok(sgd.tables.every((x) => x.state === null));
  assert.ok(sgd.memory().every((m) => m.index_bytes === 0 && m.state_bytes === 0 && m.weights_bytes === m.rows * m.dim * 4));
});

test('Rng.fillSymmetric gives the values and the state of the loop it replaces', () => {
  const a = new Rng(42, 1);
  const b = new Rng(42, 1);
  const loop = Float32Array.from({ length: 10_001 }, () => (a.next() * 2 - 1) * 0.05);
  const fill = new Float32Array(10_001);
  b.fillSymmetric(fill, 0.05);
  sameBits(fill, loop, 'values');
  assert.equal(b.next(), a.next());
});

/** Writes model files as writeModelFolder would, outside a run folder (embeddings.bin comes in parts, one per table array). */
function writeFiles(dir: string, files: ModelFiles): void {
  for (const [name, data] of Object.entries(files)) writeFileSync(path.join(dir, name), typeof data === 'string' || data instanceof Uint8Array ? data : Buffer.concat(data));
}

function tinyConfig() {
  return loadExperiment(writeFile(tempDir(), 'tiny.yaml', tinyConfigYaml())).config;
}

/** A batch of the tiny config's features: random ids in every table (lists padded), no numerics needed by the tables. */
function randomBatch(tables: EmbeddingTables, rng: Rng, n: number): EncodedBatch {
  const ids = tables.tables.map((t) => Int32Array.from({ length: n * t.width }, () => (rng.next() < 0.1 ? -1 : rng.int(Math.min(t.rows, 300)))));
  return { length: n, ids, numeric: new Float32Array(n * tables.numericCount) } as unknown as EncodedBatch;
}

function step(tables: EmbeddingTables, rng: Rng): void {
  const batch = randomBatch(tables, rng, 128);
  tables.lookup(batch);
  tables.applyGradients(batch, Float32Array.from({ length: 128 * tables.inputDim }, () => (rng.next() - 0.5) * 0.1));
}

test('a checkpoint carries the lazily allocated state: loaded tables, and tables loaded from the eager layout of older checkpoints, carry on with the same bits', () => {
  const config = tinyConfig();
  const plan = buildFeaturePlan(config);
  const make = () => new EmbeddingTables(plan, new Rng(3, 1), adam);
  const params = new ParamStore(new Rng(3, 2));
  const a = make();
  const rng = new Rng(9);
  for (let s = 0; s < 5; s++) step(a, rng);
  const dir = path.join(tempDir(), 'checkpoint');
  mkdirSync(dir);
  const files = modelFiles('resflow', params, a, []);
  writeFiles(dir, files);
  const manifest = JSON.parse(files['model.json'] as string) as { embeddings: { tables: { slots: string[]; state_rows?: number; rows: number; dim: number }[] } };
  const used = a.tables.map((t) => t.state!.used);
  assert.deepEqual(manifest.embeddings.tables.map((t) => t.state_rows), used);
  // embeddings.bin: weights, then the state rows and two moments of state rows × dim per table, nothing for untouched rows
  const values = manifest.embeddings.tables.reduce((s, t) => s + t.rows * t.dim + t.state_rows! * (1 + 2 * t.dim), 0);
  assert.equal(readFileSync(path.join(dir, 'embeddings.bin')).byteLength, values * 4);

  const b = make();
  loadModel(dir, params, b);
  assert.equal(b.steps, 5);
  b.tables.forEach((t, k) => {
    const [p, q] = [t.state!, a.tables[k]!.state!];
    assert.equal(p.used, q.used);
    for (let r = 0; r < t.rows; r++) sameBits(p.rowState(r), q.rowState(r), `table ${k} row ${r}`);
  });

  // the same checkpoint in the eager layout (m and v of rows × dim, no `rows`), as written before
  const eagerDir = path.join(tempDir(), 'checkpoint');
  mkdirSync(eagerDir);
  writeFiles(eagerDir, files);
  const parts: Float32Array[] = [];
  for (const t of a.tables) {
    parts.push(t.weights);
    const m = new Float32Array(t.rows * t.dim);
    const v = new Float32Array(t.rows * t.dim);
    for (let r = 0; r < t.rows; r++) {
      const st = t.state!.rowState(r);
      m.set(st.subarray(0, t.dim), r * t.dim);
      v.set(st.subarray(t.dim), r * t.dim);
    }
    parts.push(m, v);
  }
  const bin = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  parts.reduce((at, p) => (bin.set(p, at), at + p.length), 0);
  writeFileSync(path.join(eagerDir, 'embeddings.bin'), new Uint8Array(bin.buffer));
  for (const t of manifest.embeddings.tables) {
    t.slots = ['weights', 'm', 'v'];
    delete t.state_rows;
  }
  writeFileSync(path.join(eagerDir, 'model.json'), JSON.stringify(manifest));
  const c = make();
  loadModel(eagerDir, params, c);

  const [ra, rb, rc] = [new Rng(77), new Rng(77), new Rng(77)];
  for (let s = 0; s < 4; s++) (step(a, ra), step(b, rb), step(c, rc));
  a.tables.forEach((t, k) => {
    sameBits(b.tables[k]!.weights, t.weights, `table ${k} weights after resuming`);
    sameBits(c.tables[k]!.weights, t.weights, `table ${k} weights after resuming from the eager layout`);
  });
  params.dispose();
});

test('a checkpoint whose state names a row twice or out of range is refused, naming the file and table', () => {
  const config = tinyConfig();
  const plan = buildFeaturePlan(config);
  const params = new ParamStore(new Rng(3, 2));
  const a = new EmbeddingTables(plan, new Rng(3, 1), adam);
  step(a, new Rng(1));
  const dir = path.join(tempDir(), 'checkpoint');
  mkdirSync(dir);
  const files = modelFiles('resflow', params, a, []);
  writeFiles(dir, files);
  const bin = readFileSync(path.join(dir, 'embeddings.bin'));
  const first = a.tables[0]!;
  const rowsAt = first.rows * first.dim * 4; // the first table's state rows follow its weights
  bin.writeInt32LE(bin.readInt32LE(rowsAt), rowsAt + 4);
  writeFileSync(path.join(dir, 'embeddings.bin'), bin);
  assert.throws(() => loadModel(dir, params, new EmbeddingTables(plan, new Rng(3, 1), adam)), /embeddings\.bin: the optimizer state of table user_id: row \d+ is listed twice/);
  bin.writeInt32LE(first.rows, rowsAt);
  writeFileSync(path.join(dir, 'embeddings.bin'), bin);
  assert.throws(() => loadModel(dir, params, new EmbeddingTables(plan, new Rng(3, 1), adam)), /row 1001 is outside \[0, 1001\)/);
  params.dispose();
});

test('a file given in parts (embedding tables written from where they are) has the record of the same bytes in one piece', () => {
  const rng = new Rng(4);
  const whole = Uint8Array.from({ length: 10_000 }, () => rng.int(256));
  const parts = [whole.subarray(0, 1), whole.subarray(1, 4097), whole.subarray(4097, 4097), whole.subarray(4097)];
  assert.deepEqual(fileRecord(parts), fileRecord(whole));
  assert.equal(fileRecord(parts).sha256, createHash('sha256').update(whole).digest('hex'));
});
