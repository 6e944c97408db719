/**
 * Saving and loading a trained model: dense weights in tfjs's weights format (model.json with a
 * weightsManifest + weights.bin) plus the embedding tables (embeddings.bin), and for checkpoints
 * the optimizer state of both. Loading checks every file against run.json's record and every name
 * and shape against the model built from the config.
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { DataError } from '../base/errors.js';
import type { EmbeddingTables } from '../models/embeddings.js';
import type { ParamStore } from '../models/layers.js';
import { replaceFolderAtomic, writeAtomic } from './atomic.js';
import { FileHasher, fileRecord, folderRecordVerifier, folderVerifier, writeRecorded, type FileData } from './integrity.js';
import { isRecord } from './json-file.js';
import { MODEL_FILES } from './layout.js';

interface WeightSpec {
  name: string;
  shape: number[];
  dtype: 'float32';
}

/**
 * One table's part of embeddings.bin, in `slots` order: `weights` (rows × dim float32), then in a
 * checkpoint the optimizer state as kernels/row-state.ts keeps it: `rows` (the `state_rows` rows
 * holding state, in slot order, as int32) and `m` (and `v`), state_rows × dim each. Checkpoints
 * written before the state was allocated lazily have `m` (and `v`) of rows × dim and no `rows`.
 */
interface TableSpec {
  feature: string;
  rows: number;
  dim: number;
  slots: ('weights' | 'rows' | 'm' | 'v')[];
  state_rows?: number;
}

export interface ModelManifest {
  format: 'resflow-model-1';
  modelType: string;
  weightsManifest: { paths: string[]; weights: WeightSpec[] }[];
  embeddings: { path: string; tables: TableSpec[]; step: number };
  optimizer?: { path: string; weights: WeightSpec[] };
}

function concatFloat32(parts: Float32Array[]): Uint8Array {
  const n = parts.reduce((s, p) => s + p.length, 0);
  const out = new Float32Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return new Uint8Array(out.buffer);
}

/** A file's bytes as float32 values; a length that is not a whole number of them is a DataError. */
function asFloat32(file: string, buf: Buffer): Float32Array {
  if (buf.byteLength % 4 !== 0) throw new DataError(`${file}: ${buf.byteLength} bytes is not a whole number of float32 values (truncated or extended)`);
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

function readBytes(file: string): Buffer {
  if (!existsSync(file)) throw new DataError(`${file}: missing from the model folder`);
  return readFileSync(file);
}

/** Checks that a binary file holds exactly the values its manifest entries describe. */
function expectValues(file: string, values: Float32Array | number, expected: number, what: string): void {
  const n = typeof values === 'number' ? values : values.length;
  if (n !== expected) {
    throw new DataError(`${file}: holds ${n.toLocaleString('en-US')} float32 values, model.json's ${what} need ${expected.toLocaleString('en-US')} (truncated, extended or from another model)`);
  }
}

/**
 * Reads a file front to back straight into the arrays it fills (embedding tables of any size:
 * no copy of the whole file, no 2 GiB limit), hashing what it reads for the integrity check.
 */
class PieceReader {
  private readonly fd: number;
  readonly hasher = new FileHasher();
  constructor(readonly file: string) {
    this.fd = openSync(file, 'r');
  }
  /** Fills `target` with the next bytes of the file. */
  readInto(target: Float32Array): void {
    const bytes = new Uint8Array(target.buffer, target.byteOffset, target.byteLength);
    for (let at = 0; at < bytes.byteLength; ) {
      const n = readSync(this.fd, bytes, at, Math.min(bytes.byteLength - at, 1 << 30), null);
      if (n === 0) throw new DataError(`${this.file}: ended early (changed while it was read?)`);
      at += n;
    }
    this.hasher.update(bytes);
  }
  close(): void {
    closeSync(this.fd);
  }
}

const count = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** The files of a model folder, by name, as bytes, parts of bytes (embeddings.bin: each table where it is) or text. */
export type ModelFiles = Record<string, FileData>;

/**
 * Writes a model folder. With `optimizerState`, also the dense optimizer's slots and the sparse
 * moments, so training can resume exactly. The folder is replaced whole; inside a run folder, the
 * size and SHA-256 of each file go into run.json (integrity.ts).
 */
export function saveModel(
  dir: string,
  modelType: string,
  params: ParamStore,
  tables: EmbeddingTables,
  optimizerState?: { name: string; tensor: tf.Tensor }[],
): void {
  writeModelFolder(dir, modelFiles(modelType, params, tables, optimizerState));
}

/**
 * Replaces folder `dir` whole with `files` (a kill leaves the old folder or the new one) and, inside
 * a run folder, records each file's size and SHA-256 in run.json first (integrity.ts).
 */
export function writeModelFolder(dir: string, files: ModelFiles): void {
  const records = Object.fromEntries(Object.entries(files).map(([name, data]) => [name, fileRecord(data)]));
  writeRecorded(dir, records, true, () =>
    replaceFolderAtomic(dir, (tmp) => {
      for (const [name, data] of Object.entries(files)) writeAtomic(path.join(tmp, name), data);
    }),
  );
}

/** A model's files in memory: model.json, weights.bin, embeddings.bin and, with `optimizerState`, optimizer.bin. */
export function modelFiles(modelType: string, params: ParamStore, tables: EmbeddingTables, optimizerState?: { name: string; tensor: tf.Tensor }[]): ModelFiles {
  const files: ModelFiles = {};
  const specs: WeightSpec[] = [];
  const parts: Float32Array[] = [];
  for (const [name, v] of params.variables) {
    specs.push({ name, shape: v.shape, dtype: 'float32' });
    parts.push(v.dataSync() as Float32Array);
  }
  files[MODEL_FILES.weights] = concatFloat32(parts);
  const withSlots = optimizerState !== undefined;
  const tableSpecs: TableSpec[] = [];
  const tableParts: Float32Array[] = [];
  for (const t of tables.tables) {
    const spec: TableSpec = { feature: t.feature.name, rows: t.rows, dim: t.dim, slots: ['weights'] };
    tableParts.push(t.weights);
    const st = t.state;
    if (withSlots && st) {
      const n = st.used * st.dim;
      spec.slots.push('rows', 'm');
      spec.state_rows = st.used;
      // the row ids' int32 bits travel in the float32 file as they are (Float32Array.set copies bytes)
      tableParts.push(new Float32Array(st.rowsInSlotOrder().buffer), st.m.subarray(0, n));
      if (st.v) (spec.slots.push('v'), tableParts.push(st.v.subarray(0, n)));
    }
    tableSpecs.push(spec);
  }
  // the tables' arrays as they are, written one after the other: no copy of tables that may take most of the memory
  files[MODEL_FILES.embeddings] = tableParts.map((p) => new Uint8Array(p.buffer, p.byteOffset, p.byteLength));
  const manifest: ModelManifest = {
    format: 'resflow-model-1',
    modelType,
    weightsManifest: [{ paths: [MODEL_FILES.weights], weights: specs }],
    embeddings: { path: MODEL_FILES.embeddings, tables: tableSpecs, step: tables.steps },
  };
  if (optimizerState) {
    manifest.optimizer = { path: MODEL_FILES.optimizer, weights: optimizerState.map((w) => ({ name: w.name, shape: w.tensor.shape, dtype: 'float32' })) };
    files[MODEL_FILES.optimizer] = concatFloat32(optimizerState.map((w) => w.tensor.dataSync() as Float32Array));
  }
  files[MODEL_FILES.manifest] = JSON.stringify(manifest, null, 2) + '\n';
  return files;
}

function readManifest(mfile: string, check: (file: string, data: Uint8Array) => void): ModelManifest {
  const bytes = readBytes(mfile);
  check(mfile, bytes);
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8')) as unknown;
  } catch (err) {
    throw new DataError(`${mfile}: unreadable (${(err as Error).message})`);
  }
  if (!isRecord(doc)) throw new DataError(`${mfile}: expected a model manifest (an object with format, weightsManifest and embeddings)`);
  if (doc['format'] !== 'resflow-model-1') throw new DataError(`${mfile}: unknown model format ${String(doc['format'])}`);
  const isSpecs = (v: unknown) => Array.isArray(v) && v.every((w) => isRecord(w) && typeof w['name'] === 'string' && Array.isArray(w['shape']) && w['shape'].every((d) => Number.isInteger(d) && d >= 0));
  const dense = doc['weightsManifest'];
  if (!Array.isArray(dense) || !isRecord(dense[0]) || !Array.isArray(dense[0]['paths']) || typeof dense[0]['paths'][0] !== 'string' || !isSpecs(dense[0]['weights'])) {
    throw new DataError(`${mfile}: \`weightsManifest\` should be a list with one { paths, weights } entry`);
  }
  const emb = doc['embeddings'];
  const isSlots = (v: unknown) => Array.isArray(v) && v[0] === 'weights' && v.every((s) => ['weights', 'rows', 'm', 'v'].includes(s as string));
  const isTables = (v: unknown) =>
    Array.isArray(v) &&
    v.every(
      (t) =>
        isRecord(t) &&
        typeof t['feature'] === 'string' &&
        Number.isInteger(t['rows']) &&
        Number.isInteger(t['dim']) &&
        isSlots(t['slots']) &&
        ((t['slots'] as string[]).includes('rows') ? Number.isInteger(t['state_rows']) && (t['state_rows'] as number) >= 0 : t['state_rows'] === undefined),
    );
  if (!isRecord(emb) || typeof emb['path'] !== 'string' || !isTables(emb['tables'])) throw new DataError(`${mfile}: \`embeddings\` should be { path, tables, step }`);
  const opt = doc['optimizer'];
  if (opt !== undefined && (!isRecord(opt) || typeof opt['path'] !== 'string' || !isSpecs(opt['weights']))) throw new DataError(`${mfile}: \`optimizer\` should be { path, weights }`);
  return doc as unknown as ModelManifest;
}

/**
 * Checks an optimizer slot against the model: tfjs names a slot `<weight>/<slot>` (the weight's
 * name possibly prefixed); a slot of a weight must have the weight's shape. Scalars (the step
 * count, Adam's beta powers) belong to no weight.
 */
function checkSlot(file: string, spec: WeightSpec, params: ParamStore): void {
  if (spec.shape.length === 0) return;
  const base = spec.name.slice(0, spec.name.lastIndexOf('/'));
  const owner = [...params.variables].find(([name]) => base === name || base.endsWith(`/${name}`));
  if (!owner) throw new DataError(`${file}: optimizer slot ${spec.name} (shape ${spec.shape}) belongs to no weight of the model built from the config`);
  if (owner[1].shape.join('x') !== spec.shape.join('x')) throw new DataError(`${file}: optimizer slot ${spec.name} has shape [${spec.shape}], weight ${owner[0]} has [${owner[1].shape}]`);
}

/**
 * Loads weights into freshly built params and tables; returns the optimizer state if saved. Every
 * file is checked against run.json's record (integrity.ts) and every shape against the model.
 */
export function loadModel(dir: string, params: ParamStore, tables: EmbeddingTables): { name: string; tensor: tf.Tensor }[] | undefined {
  const mfile = path.join(dir, MODEL_FILES.manifest);
  if (!existsSync(mfile)) throw new DataError(`${dir}: no saved model (model.json missing)`);
  const check = folderVerifier(dir);
  const manifest = readManifest(mfile, check);
  const read = (name: string) => {
    const file = path.join(dir, name);
    const bytes = readBytes(file);
    check(file, bytes);
    return { file, values: asFloat32(file, bytes) };
  };

  const denseSpecs = manifest.weightsManifest[0]!.weights;
  for (const spec of denseSpecs) {
    const v = params.variables.get(spec.name);
    if (!v) throw new DataError(`${mfile}: weight ${spec.name} does not exist in the model built from the config`);
    if (v.shape.join('x') !== spec.shape.join('x')) throw new DataError(`${mfile}: weight ${spec.name} has shape [${spec.shape}], the model built from the config has [${v.shape}]`);
  }
  if (params.variables.size !== denseSpecs.length) {
    const missing = [...params.variables.keys()].filter((n) => !denseSpecs.some((s) => s.name === n));
    throw new DataError(`${mfile}: the saved model has ${denseSpecs.length} weights, the model built from the config ${params.variables.size} (missing: ${missing.join(', ') || 'none'})`);
  }
  const dense = read(manifest.weightsManifest[0]!.paths[0]!);
  expectValues(dense.file, dense.values, denseSpecs.reduce((s, w) => s + count(w.shape), 0), 'dense weights');
  let at = 0;
  for (const spec of denseSpecs) {
    const size = count(spec.shape);
    params.variables.get(spec.name)!.assign(tf.tensor(dense.values.subarray(at, at + size), spec.shape));
    at += size;
  }

  const tableSpecs = manifest.embeddings.tables;
  if (tableSpecs.length !== tables.tables.length) throw new DataError(`${mfile}: ${tableSpecs.length} embedding tables, the config's features make ${tables.tables.length}`);
  tableSpecs.forEach((spec, i) => {
    const t = tables.tables[i]!;
    if (t.feature.name !== spec.feature || t.rows !== spec.rows || t.dim !== spec.dim) {
      throw new DataError(`${mfile}: embedding table ${spec.feature} (${spec.rows}x${spec.dim}) does not match the config's ${t.feature.name} (${t.rows}x${t.dim})`);
    }
  });
  const embFile = path.join(dir, manifest.embeddings.path);
  if (!existsSync(embFile)) throw new DataError(`${embFile}: missing from the model folder`);
  const embSize = statSync(embFile).size;
  const verify = folderRecordVerifier(dir);
  verify.size(embFile, embSize);
  if (embSize % 4 !== 0) throw new DataError(`${embFile}: ${embSize} bytes is not a whole number of float32 values (truncated or extended)`);
  /** Values of one slot of a table: rows × dim, the state rows (`rows`), or state rows × dim (lazy `m`, `v`). */
  const slotSize = (spec: TableSpec, slot: TableSpec['slots'][number]) =>
    slot === 'weights' ? spec.rows * spec.dim : spec.state_rows === undefined ? spec.rows * spec.dim : slot === 'rows' ? spec.state_rows : spec.state_rows * spec.dim;
  expectValues(embFile, embSize / 4, tableSpecs.reduce((s, t) => s + t.slots.reduce((n, slot) => n + slotSize(t, slot), 0), 0), 'embedding tables (rows x dims x slots)');
  const reader = new PieceReader(embFile);
  const loadState: (() => void)[] = []; // once the file has passed its integrity check
  try {
    tableSpecs.forEach((spec, i) => {
      const t = tables.tables[i]!;
      const parts: Partial<Record<TableSpec['slots'][number], Float32Array>> = {};
      for (const slot of spec.slots) {
        // the weights go straight into the table; the state (rows holding it, by slot) into arrays of its size
        const target = slot === 'weights' ? t.weights : new Float32Array(slotSize(spec, slot));
        reader.readInto(target);
        parts[slot] = target;
      }
      // a model without state (a saved model, not a checkpoint) leaves the tables' state as it is
      const state = t.state;
      if (!parts.m || !state) return;
      loadState.push(() => {
        if ((parts.v !== undefined) !== (state.v !== null)) throw new DataError(`${embFile}: table ${spec.feature} holds the state of another optimizer than the config's`);
        const problem = parts.rows
          ? state.load(new Int32Array(parts.rows.buffer, parts.rows.byteOffset, parts.rows.length), parts.m!, parts.v ?? null)
          : state.loadDense(parts.m!, parts.v ?? null);
        if (problem !== null) throw new DataError(`${embFile}: the optimizer state of table ${spec.feature}: ${problem}`);
      });
    });
  } finally {
    reader.close();
  }
  verify.record(embFile, reader.hasher.record());
  for (const load of loadState) load();
  tables.steps = manifest.embeddings.step;

  if (!manifest.optimizer) return undefined;
  const optSpecs = manifest.optimizer.weights;
  for (const spec of optSpecs) checkSlot(mfile, spec, params);
  const opt = read(manifest.optimizer.path);
  expectValues(opt.file, opt.values, optSpecs.reduce((s, w) => s + count(w.shape), 0), 'optimizer slots');
  at = 0;
  return optSpecs.map((spec) => {
    const size = count(spec.shape);
    const tensor = tf.tensor(opt.values.slice(at, at + size), spec.shape);
    at += size;
    return { name: spec.name, tensor };
  });
}
