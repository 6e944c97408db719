/**
 * Scoring a whole split: every row of every request (evaluation never samples), with the labels,
 * stages, groups, teacher scores and ground truth that metrics need.
 */
import { readAhead } from '../base/read-ahead.js';
import type { ExperimentConfig } from '../config/experiment.js';
import { BatchEncoder, openSplit, planFeatures, type EncodedBatch, type KeyIndex } from '../data/encode.js';
import { labelledBatches } from '../data/rank-labels.js';
import { concatBatches } from '../data/batches.js';
import type { TableInfo } from '../data/reader.js';
import { predict, type ModelBundle } from '../models/bundle.js';

export interface ScoredSplit {
  /** Per task: probability per row. */
  probs: Record<string, Float32Array>;
  /** Row metadata (labels, stage, request, user, teacher, truth) without features. */
  rows: EncodedBatch;
  files: string[];
  seconds: number;
  /** Original request key per dense request id (`keyOf`). */
  requestKeys: KeyIndex;
  /** The request column's type in the scored files. */
  requestType: RequestKeyType;
}

export async function scoreSplit(
  bundle: ModelBundle,
  split: 'validation' | 'eval',
  files?: string | string[],
  /** Called after each scored batch; may be async and may throw to stop scoring (an interrupt). */
  onProgress?: (rows: number, total: number) => void | Promise<void>,
): Promise<ScoredSplit> {
  const probParts: Float32Array[][] = bundle.taskNames.map(() => []);
  const metaParts: EncodedBatch[] = [];
  const streamed = await scoreStream(
    bundle,
    split,
    files,
    (probs, batch) => {
      bundle.taskNames.forEach((t, k) => probParts[k]!.push(probs[t]!));
      metaParts.push({ ...batch, ids: [], numeric: new Float32Array(0) });
    },
    onProgress,
  );
  const done = streamed.rows;
  const join = (parts: Float32Array[]) => {
    const out = new Float32Array(done);
    let at = 0;
    for (const p of parts) (out.set(p, at), (at += p.length));
    return out;
  };
  const probs = Object.fromEntries(bundle.taskNames.map((t, k) => [t, join(probParts[k]!)]));
  const rows = metaParts.length ? concatBatches(metaParts) : emptyRows();
  return { probs, rows, files: streamed.files, seconds: streamed.seconds, requestKeys: streamed.requestKeys, requestType: streamed.requestType };
}

/** One scored batch: each task's probabilities and the batch's rows. */
export interface ScoredBatch {
  probs: Record<string, Float32Array>;
  batch: EncodedBatch;
}

/** The request column's type (the data's own keys): int64 when the column holds numbers in every file. */
export type RequestKeyType = 'int64' | 'string';

function requestKeyType(tables: readonly TableInfo[], column: string | null | undefined): RequestKeyType {
  const numeric = column != null && tables.every((t) => t.columns.find((c) => c.name === column)?.kind === 'number');
  return numeric ? 'int64' : 'string';
}

/** A split opened for scoring: its files, and its scored batches as they are pulled (nothing kept). */
export interface ScoringStream {
  tables: TableInfo[];
  /** Rows in all files. */
  total: number;
  /** Original request key per dense request id, filled as batches are read. */
  requestKeys: KeyIndex;
  /** The request column's type, known before any row is read. */
  requestType: RequestKeyType;
  batches: AsyncGenerator<ScoredBatch>;
}

export async function openScoring(bundle: ModelBundle, split: 'validation' | 'eval', files: string | string[] | undefined): Promise<ScoringStream> {
  const config: ExperimentConfig = bundle.config;
  // Evaluation needs labels; unlabelled rows are `resflow predict`'s (README.md, "Predict").
  const labelHint = split === 'eval' ? 'evaluation needs every label column; `resflow predict` scores rows without labels' : undefined;
  const opened = await openSplit(config, split, files, { labelHint, features: planFeatures(bundle.plan) });
  const encoder = new BatchEncoder(config, bundle.plan);
  async function* batches(): AsyncGenerator<ScoredBatch> {
    // one batch read ahead: on webgpu the reading overlaps the scoring (README.md, "Backends")
    for await (const batch of readAhead(labelledBatches(config, encoder, opened, config.eval.batch_size))) {
      const p = await predict(bundle, batch);
      yield { probs: Object.fromEntries(bundle.taskNames.map((t, k) => [t, p[k]!])), batch };
    }
  }
  return {
    tables: opened.tables,
    total: opened.tables.reduce((s, t) => s + t.rows, 0),
    requestKeys: encoder.requests,
    requestType: requestKeyType(opened.tables, config.data.columns.request),
    batches: batches(),
  };
}

/** A split scored batch by batch: `onBatch` gets each batch's probabilities per task and its rows; nothing is kept. */
export async function scoreStream(
  bundle: ModelBundle,
  split: 'validation' | 'eval',
  files: string | string[] | undefined,
  onBatch: (probs: Record<string, Float32Array>, batch: EncodedBatch) => void,
  onProgress?: (rows: number, total: number) => void | Promise<void>,
  /** Called once the files are open, with their total number of rows. */
  onOpen?: (total: number) => void,
): Promise<{ rows: number; total: number; files: string[]; seconds: number; requestKeys: KeyIndex; requestType: RequestKeyType }> {
  const stream = await openScoring(bundle, split, files);
  const total = stream.total;
  onOpen?.(total);
  const started = Date.now();
  let done = 0;
  for await (const { probs, batch } of stream.batches) {
    onBatch(probs, batch);
    done += batch.length;
    await onProgress?.(done, total);
  }
  return { rows: done, total, files: stream.tables.map((t) => t.file), seconds: (Date.now() - started) / 1000, requestKeys: stream.requestKeys, requestType: stream.requestType };
}

function emptyRows(): EncodedBatch {
  return { length: 0, ids: [], numeric: new Float32Array(0), labels: new Map(), stage: new Uint8Array(0), request: null, user: null, teacher: new Map(), truth: new Map() };
}
