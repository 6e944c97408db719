/**
 * Rank-consistency labels (README.md, "Rank-consistency tasks"; GRACE, SIGIR 2024): a task whose
 * label is "the ranking model (teacher) put this row in its top k within its request", derived at
 * read time from a teacher column. A request's rows are contiguous in the data, so batches are
 * re-cut at request boundaries as they stream (the last request of a read batch waits for the next)
 * and each request is labelled once it is whole. Ties in the teacher's score go to the earlier row,
 * as in the metrics' top K (docs/domain.md, "Metrics"), so a request of n rows has min(k, n) positives.
 */
import { DataError } from '../base/errors.js';
import { IdBits } from './key-table.js';
import { labelKey, type ExperimentConfig } from '../config/experiment.js';
import { concatBatches, selectRows } from './batches.js';
import { encodedBatches, type BatchEncoder, type ColumnNeed, type EncodedBatch } from './encode.js';
import type { TableInfo } from './reader.js';

export interface RankLabelSpec {
  /** The label's name in a batch (labelKey). */
  key: string;
  teacher: string;
  topK: number;
}

/** The rank-consistency labels the config's tasks use, each once. */
export function rankLabelSpecs(config: ExperimentConfig): RankLabelSpec[] {
  const out: RankLabelSpec[] = [];
  for (const t of config.tasks) {
    if (typeof t.label === 'string') continue;
    const key = labelKey(t.label);
    if (!out.some((s) => s.key === key)) out.push({ key, teacher: t.label.from_teacher, topK: t.label.top_k });
  }
  return out;
}

/**
 * Sets out[i] = 1 for the k rows of [from, to) with the highest scores (ties: the earlier row first),
 * 0 for the others.
 */
export function markTopK(scores: ArrayLike<number>, from: number, to: number, k: number, out: Uint8Array): void {
  const rows = Array.from({ length: to - from }, (_, i) => from + i);
  if (k < rows.length) rows.sort((a, b) => scores[b]! - scores[a]! || a - b);
  for (let j = 0; j < rows.length; j++) out[rows[j]!] = j < k ? 1 : 0;
}

/** A batch of whole requests with its rank-consistency labels added. */
function labelled(b: EncodedBatch, specs: readonly RankLabelSpec[]): EncodedBatch {
  const req = b.request!;
  for (const s of specs) {
    const scores = b.teacher.get(s.teacher)!;
    const out = new Uint8Array(b.length);
    for (let start = 0; start < b.length; ) {
      let stop = start + 1;
      while (stop < b.length && req[stop] === req[start]) stop++;
      markTopK(scores, start, stop, s.topK, out);
      start = stop;
    }
    b.labels.set(s.key, out);
  }
  return b;
}

const range = (from: number, to: number) => Int32Array.from({ length: to - from }, (_, i) => from + i);

/**
 * The batches of `source` re-cut so that none splits a request, each with its rank-consistency labels.
 * A request whose rows are not contiguous is an error (exit 2) naming the file, row and request.
 */
export async function* withRankLabels(source: AsyncIterable<EncodedBatch>, specs: readonly RankLabelSpec[]): AsyncGenerator<EncodedBatch> {
  let carry: EncodedBatch | null = null; // the last, possibly unfinished request of the previous batch
  const finished = new IdBits(); // not a Set: more than 16,777,216 requests are fine (README.md, "Scale")
  for await (const batch of source) {
    if (!batch.request) throw new DataError('rank-consistency labels need data.columns.request');
    const carried = carry ? carry.length : 0;
    const b: EncodedBatch = carry ? concatBatches([carry, batch]) : batch;
    const req = b.request!;
    // requests that end in this batch: all but the last one, which may go on in the next
    let end = b.length - 1;
    while (end > 0 && req[end - 1] === req[b.length - 1]) end--;
    for (let i = 0; i < b.length; i++) {
      if (i > 0 && req[i] === req[i - 1]) continue;
      if (finished.has(req[i]!)) {
        const o = batch.origin;
        const key = o?.requestKeys.keyOf(req[i]!) ?? `#${req[i]}`;
        const where = o && i >= carried ? `${o.file}: row ${o.firstRow + i - carried}: ` : '';
        throw new DataError(`${where}request ${key} appears again after other requests; rank-consistency labels (tasks[].label.from_teacher) need each request's rows contiguous: sort the files by the request column first`);
      }
      if (i < end) finished.add(req[i]!);
    }
    if (end === 0) {
      carry = b;
      continue;
    }
    const head = end === b.length ? b : selectRows(b, range(0, end));
    carry = end === b.length ? null : selectRows(b, range(end, b.length));
    yield labelled(head, specs);
  }
  if (carry) yield labelled(carry, specs);
}

/**
 * encodedBatches (encode.ts), with the config's rank-consistency labels added when it has any (then
 * the batches are re-cut at request ends); what training, validation and evaluation read.
 */
export function labelledBatches(
  config: ExperimentConfig,
  encoder: BatchEncoder,
  opened: { tables: TableInfo[]; needs: ColumnNeed[] },
  batchRows = config.data.read_batch_rows,
): AsyncGenerator<EncodedBatch> {
  const specs = encoder.mode === 'labelled' ? rankLabelSpecs(config) : [];
  const source = encodedBatches(config, encoder, opened, batchRows);
  return specs.length ? withRankLabels(source, specs) : source;
}
