/**
 * Turns raw columns into model inputs as the config declares: categorical ids hashed into buckets
 * or mapped by vocabulary, lists of ids padded to max_len, numeric columns, labels, stages,
 * request and user groups, teacher scores and ground-truth probabilities.
 */
import { readFileSync, existsSync } from 'node:fs';
import { DataError } from '../base/errors.js';
import { STAGES, type ExperimentConfig, type FeatureConfig, type LabelName, type Stage } from '../config/experiment.js';
import { featureSeed, hashId } from './hash.js';
import { KeyTable } from './key-table.js';
import { checkColumns, fileRow, openTables, readBatches, type ColumnKind, type RawBatch, type RawColumn, type TableInfo } from './reader.js';

export interface SparseFeature {
  name: string;
  column: string;
  kind: 'categorical' | 'list';
  /** Rows of the embedding table (buckets + 1 null row, or vocabulary + 1 out-of-vocabulary row). */
  tableSize: number;
  /** Ids per row: 1 for categorical, max_len for lists (padded with -1). */
  width: number;
  pooling: 'sum' | 'mean';
  dim: number;
  toRow: (id: number | string | null) => number;
}

export interface NumericFeature {
  name: string;
  column: string;
  transform: 'none' | 'log1p';
}

export interface FeaturePlan {
  sparse: SparseFeature[];
  numeric: NumericFeature[];
}

export interface EncodedBatch {
  length: number;
  /** Per sparse feature: length x width table rows; -1 pads lists. */
  ids: Int32Array[];
  /** length x numeric.length, row-major. */
  numeric: Float32Array;
  /** Every label the data provides, `exposure` derived from the stage, and the rank-consistency labels (rank-labels.ts) by labelKey. */
  labels: Map<string, Uint8Array>;
  /** Index into STAGES per row. */
  stage: Uint8Array;
  /** Dense request ids, stable within one stream (null without a request column). */
  request: Int32Array | null;
  user: Int32Array | null;
  teacher: Map<string, Float32Array>;
  truth: Map<string, Float32Array>;
  /**
   * Where the rows came from, for error messages only: the file, the file row of row 0 (1-based,
   * see raw-batch.ts fileRow) and the data's own request key of each dense request id. Set by the
   * encoder; batches built by concatenating or selecting rows do not carry it.
   */
  origin?: { file: string; firstRow: number; requestKeys: KeyIndex };
}

function loadVocab(file: string, feature: string): Map<string, number> {
  if (!existsSync(file)) throw new DataError(`features.${feature}.vocab: file not found: ${file}`);
  const map = new Map<string, number>();
  for (const line of readFileSync(file, 'utf8').split(/\r?\n/)) {
    const id = line.trim();
    if (id !== '' && !map.has(id)) map.set(id, map.size + 1); // row 0 is out-of-vocabulary
  }
  if (map.size === 0) throw new DataError(`features.${feature}.vocab: ${file} holds no ids (expected one id per line)`);
  return map;
}

/** The features' encodings, in config order; `only`: the names of the features to keep (null: all). */
export function buildFeaturePlan(config: ExperimentConfig, only: readonly string[] | null = null): FeaturePlan {
  const sparse: SparseFeature[] = [];
  const numeric: NumericFeature[] = [];
  for (const f of config.features) {
    if (only && !only.includes(f.name)) continue;
    const column = f.column ?? f.name;
    if (f.type === 'numeric') {
      numeric.push({ name: f.name, column, transform: f.transform });
      continue;
    }
    sparse.push({
      name: f.name,
      column,
      kind: f.type,
      width: f.type === 'list' ? f.max_len : 1,
      pooling: f.pooling,
      dim: f.dim ?? config.model.embedding_dim,
      ...lookup(f),
    });
  }
  return { sparse, numeric };
}

function lookup(f: FeatureConfig): { tableSize: number; toRow: SparseFeature['toRow'] } {
  if (f.vocab !== undefined) {
    const vocab = loadVocab(f.vocab, f.name);
    return { tableSize: vocab.size + 1, toRow: (id) => (id === null ? 0 : vocab.get(String(id)) ?? 0) };
  }
  const buckets = f.buckets!;
  const seed = featureSeed(f.name);
  return { tableSize: buckets + 1, toRow: (id) => (id === null ? buckets : hashId(id, seed) % buckets) };
}

/**
 * Dense ids for request/user keys, shared by every batch of a stream. Backed by a typed-array hash
 * table (key-table.ts), so more than 16,777,216 distinct keys (JavaScript `Map`'s limit) are fine.
 */
export class KeyIndex {
  private readonly table = new KeyTable();
  get size(): number {
    return this.table.size;
  }
  idOf(key: number | string): number {
    return this.table.idOf(key);
  }
  /** Original key of a dense id (to write predictions with the data's own request ids). */
  keyOf(id: number): number | string {
    return this.table.keyOf(id);
  }
}

export interface ColumnNeed {
  name: string;
  kind: ColumnKind;
  role: string;
  /** Read when every file has it, skipped otherwise (ground truth; the request in features-only mode). */
  optional?: boolean;
  /** Appended to the "missing column" error. */
  hint?: string;
}

/**
 * What rows must carry. `labelled` (training, validation, evaluation): features, labels, stage,
 * request, user, teacher scores (truth when present). `features` (`resflow predict`, scoring for
 * serving): the features only, plus the request column read when the data has it (for the caller to
 * copy; the encoder leaves it alone); labels, stage, user, teacher and truth are neither required nor read.
 */
export type EncodeMode = 'labelled' | 'features';

export interface NeedOptions {
  /** false: ground truth is not read even when present (training). */
  truth?: boolean;
  mode?: EncodeMode;
  /** Added to a missing label column's error (evaluation names `resflow predict`). */
  labelHint?: string;
  /** The features the model reads (a feature budget: model.type cold); default all of the config's. */
  features?: readonly string[] | null;
}

/** The names of the features a plan encodes. */
export function planFeatures(plan: FeaturePlan): string[] {
  return [...plan.sparse.map((f) => f.name), ...plan.numeric.map((f) => f.name)];
}

/** The columns a config reads, each with the role that names it in errors. */
export function neededColumns(config: ExperimentConfig, opts: NeedOptions = {}): ColumnNeed[] {
  const cols = config.data.columns;
  const needs: ColumnNeed[] = [];
  const add = (name: string | null, kind: ColumnKind, role: string, extra: Partial<ColumnNeed> = {}) => {
    if (name && !needs.some((n) => n.name === name)) needs.push({ name, kind, role, ...extra });
  };
  for (const f of config.features) if (!opts.features || opts.features.includes(f.name)) add(f.column ?? f.name, f.type === 'numeric' ? 'number' : f.type === 'list' ? 'list' : 'id', `feature ${f.name}`);
  if (opts.mode === 'features') {
    add(cols.request, 'id', 'request', { optional: true });
    return needs;
  }
  for (const [label, col] of Object.entries(cols.labels)) add(col, 'number', `label ${label}`, opts.labelHint ? { hint: opts.labelHint } : {});
  add(cols.request, 'id', 'request');
  add(cols.user, 'id', 'user');
  add(cols.stage, 'id', 'stage');
  for (const [name, col] of Object.entries(cols.teacher)) add(col, 'number', `teacher ${name}`);
  if (opts.truth !== false) for (const [name, col] of Object.entries(cols.truth)) add(col, 'number', `truth ${name}`);
  return needs;
}

export class BatchEncoder {
  readonly requests = new KeyIndex();
  readonly users = new KeyIndex();
  private readonly stageLookup: Map<string, number>;

  constructor(
    private readonly config: ExperimentConfig,
    readonly plan: FeaturePlan,
    /** `features`: only model inputs; request, labels, stage, user, teacher and truth stay empty. */
    readonly mode: EncodeMode = 'labelled',
  ) {
    this.stageLookup = new Map();
    STAGES.forEach((s, i) => {
      const custom = config.data.stage_values[s];
      if (custom !== undefined) this.stageLookup.set(String(custom), i);
      else {
        this.stageLookup.set(s, i);
        this.stageLookup.set(String(i), i);
      }
    });
  }

  encode(raw: RawBatch, file: string): EncodedBatch {
    const n = raw.length;
    const cols = this.config.data.columns;
    const col = (name: string) => raw.columns.get(name)!;

    const ids = this.plan.sparse.map((f) => {
      const c = col(f.column);
      const out = new Int32Array(n * f.width);
      const role = `feature ${f.name}`;
      if (f.kind === 'categorical') {
        if (c.type === 'number') {
          for (let i = 0; i < n; i++) {
            if (c.valid && !c.valid[i]) out[i] = f.toRow(null);
            else out[i] = f.toRow(integerId(c.values[i]!, raw, i, file, f.column, role));
          }
        } else if (c.type === 'string') for (let i = 0; i < n; i++) out[i] = f.toRow(c.values[i]!);
        else throw new DataError(`${file}: column \`${f.column}\` holds lists; declare feature \`${f.name}\` with type: list`);
      } else {
        if (c.type !== 'list') throw new DataError(`${file}: column \`${f.column}\` is not a list column (feature \`${f.name}\` has type: list)`);
        out.fill(-1);
        const numbers = c.values instanceof Float64Array ? c.values : null;
        for (let i = 0; i < n; i++) {
          const start = c.offsets[i]!;
          const len = Math.min(c.offsets[i + 1]! - start, f.width);
          for (let j = 0; j < len; j++) {
            const id = numbers ? integerId(numbers[start + j]!, raw, i, file, f.column, role) : c.values[start + j] ?? null;
            out[i * f.width + j] = f.toRow(id);
          }
        }
      }
      return out;
    });

    const numeric = new Float32Array(n * this.plan.numeric.length);
    this.plan.numeric.forEach((f, j) => {
      const c = numberColumn(col(f.column), file, f.column);
      const stride = this.plan.numeric.length;
      for (let i = 0; i < n; i++) {
        let v = c.valid && !c.valid[i] ? 0 : c.values[i]!;
        // README "Data contract": a numeric feature is a finite number (a null reads as 0); NaN or ±Inf
        // would only surface later as a non-finite loss, so it is refused here, where the row is known.
        if (!Number.isFinite(Math.fround(v))) {
          throw new DataError(`${file}: column \`${f.column}\` (feature ${f.name}) holds ${v} at ${fileRow(raw, i)}; expected a finite number${Number.isFinite(v) ? ' within float32 range' : ''}`);
        }
        if (f.transform === 'log1p') v = Math.log1p(Math.max(v, 0));
        numeric[i * stride + j] = v;
      }
    });

    const origin = { file, firstRow: raw.offset + 1, requestKeys: this.requests };
    if (this.mode === 'features') {
      // no dense request ids: they would index every request of the stream (memory growing with the
      // data); predict copies the request column as read
      return { length: n, ids, numeric, labels: new Map(), stage: new Uint8Array(n), request: null, user: null, teacher: new Map(), truth: new Map(), origin };
    }

    const stage = new Uint8Array(n);
    if (cols.stage) {
      const c = col(cols.stage);
      for (let i = 0; i < n; i++) {
        const v = c.type === 'number' ? (c.valid && !c.valid[i] ? null : String(c.values[i])) : c.type === 'string' ? c.values[i]! : null;
        const s = v === null ? undefined : this.stageLookup.get(v);
        if (s === undefined) {
          throw new DataError(
            `${file}: column \`${cols.stage}\` (stage) holds ${v === null ? 'a null' : `\`${v}\``} at ${fileRow(raw, i)}; expected one of ${[...this.stageLookup.keys()].join(', ')} (map other values with data.stage_values)`,
          );
        }
        stage[i] = s;
      }
    }

    const labels = new Map<string, Uint8Array>();
    for (const [label, name] of Object.entries(cols.labels)) {
      const c = numberColumn(col(name), file, name);
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        const v = c.values[i]!;
        if ((c.valid && !c.valid[i]) || (v !== 0 && v !== 1)) {
          throw new DataError(`${file}: column \`${name}\` (label ${label}) holds ${c.valid && !c.valid[i] ? 'a null' : v} at ${fileRow(raw, i)}; expected 0 or 1`);
        }
        out[i] = v;
      }
      labels.set(label as LabelName, out);
    }
    const exposure = new Uint8Array(n);
    for (let i = 0; i < n; i++) exposure[i] = stage[i] === 0 ? 1 : 0;
    labels.set('exposure', exposure);

    const floats = (mapping: Record<string, string>, role: string) => {
      const out = new Map<string, Float32Array>();
      for (const [key, name] of Object.entries(mapping)) {
        const c = numberColumn(col(name), file, name);
        const arr = new Float32Array(n);
        for (let i = 0; i < n; i++) {
          const v = c.values[i]!;
          if ((c.valid && !c.valid[i]) || !(v >= 0 && v <= 1)) {
            throw new DataError(`${file}: column \`${name}\` (${role} ${key}) holds ${c.valid && !c.valid[i] ? 'a null' : v} at ${fileRow(raw, i)}; expected a probability in [0, 1]`);
          }
          arr[i] = v;
        }
        out.set(key, arr);
      }
      return out;
    };
    // truth is not read for training (openSplit with truth: false)
    const truthCols = Object.fromEntries(Object.entries(cols.truth).filter(([, name]) => raw.columns.has(name)));

    return {
      length: n,
      ids,
      numeric,
      labels,
      stage,
      request: cols.request ? this.groupIds(raw, cols.request, 'request', file, this.requests) : null,
      user: cols.user ? this.groupIds(raw, cols.user, 'user', file, this.users) : null,
      teacher: floats(cols.teacher, 'teacher'),
      truth: floats(truthCols, 'truth'),
      origin,
    };
  }

  private groupIds(raw: RawBatch, name: string, role: string, file: string, index: KeyIndex): Int32Array {
    const c = raw.columns.get(name)!;
    const n = c.type === 'list' ? c.offsets.length - 1 : c.values.length;
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const v =
        c.type === 'number' ? (c.valid && !c.valid[i] ? 'null' : integerId(c.values[i]!, raw, i, file, name, role))
        : c.type === 'string' ? c.values[i] ?? 'null'
        : 'null';
      out[i] = index.idOf(v);
    }
    return out;
  }
}

/**
 * An id read as a number must be integer-valued (README "Data contract": ids are ints or strings):
 * a fractional or non-finite DOUBLE would hash to a bucket no integer id shares, so it is refused.
 */
function integerId(v: number, raw: RawBatch, i: number, file: string, column: string, role: string): number {
  if (!Number.isInteger(v)) throw new DataError(`${file}: column \`${column}\` (${role}) holds ${v} at ${fileRow(raw, i)}; expected an integer id (or a string column)`);
  return v;
}

function numberColumn(c: RawColumn, file: string, name: string): Extract<RawColumn, { type: 'number' }> {
  if (c.type !== 'number') throw new DataError(`${file}: column \`${name}\` holds ${c.type === 'list' ? 'lists' : 'strings'}, expected numbers`);
  return c;
}

export type Split = 'train' | 'validation' | 'eval';

/** Opens the files of a split and checks their columns before any batch is read. */
export async function openSplit(
  config: ExperimentConfig,
  split: Split,
  files?: string | string[],
  opts: NeedOptions & { /** How file errors name the files (default `data.<split>`). */ what?: string } = {},
): Promise<{ tables: TableInfo[]; needs: ColumnNeed[] }> {
  const spec = files ?? config.data[split];
  if (!spec) throw new DataError(`data.${split}: no files configured for the ${split} split`);
  const tables = await openTables(spec, config.data.format, opts.what ?? `data.${split}`);
  // Every mapped column, truth included, must be there: a misspelled truth column would otherwise
  // silently drop the oracle (README.md, "Ground truth"). Real logs simply map no truth columns.
  // Optional columns (the request id of rows scored by `resflow predict`) are read when every file has them.
  const needs = neededColumns(config, opts);
  const required = needs.filter((n) => !n.optional);
  for (const t of tables) checkColumns(t, required);
  const present = needs.filter((n) => !n.optional || tables.every((t) => t.columns.some((c) => c.name === n.name)));
  return { tables, needs: present };
}

/** Streams encoded batches of a split, file after file. */
export async function* encodedBatches(
  config: ExperimentConfig,
  encoder: BatchEncoder,
  opened: { tables: TableInfo[]; needs: ColumnNeed[] },
  batchRows = config.data.read_batch_rows,
): AsyncGenerator<EncodedBatch> {
  for (const t of opened.tables) {
    for await (const raw of readBatches(t, opened.needs, batchRows)) yield encoder.encode(raw, t.file);
  }
}
