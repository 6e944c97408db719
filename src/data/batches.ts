/**
 * From a stream of encoded rows to training minibatches: keep the rows some task learns from,
 * sample candidates per request (ASMOL: all exposures + M ranking + L pre-ranking candidates,
 * uniform without replacement, fresh each epoch), shuffle with a seeded bounded buffer, and cut
 * minibatches of rows, or of whole requests when a loss needs them.
 */
import { DataError } from '../base/errors.js';
import type { EncodedBatch } from './encode.js';
import type { Rng } from '../base/rng.js';
import { IdBits } from './key-table.js';

// ---- row selection over every field of a batch -------------------------------------------------

function pickTyped<T extends Int32Array | Uint8Array | Float32Array>(a: T, idx: Int32Array, width = 1): T {
  const out = new (a.constructor as new (n: number) => T)(idx.length * width);
  if (width === 1) for (let i = 0; i < idx.length; i++) out[i] = a[idx[i]!]!;
  else for (let i = 0; i < idx.length; i++) out.set(a.subarray(idx[i]! * width, idx[i]! * width + width), i * width);
  return out;
}

function mapValues<V>(m: Map<string, V>, f: (v: V) => V): Map<string, V> {
  return new Map([...m.entries()].map(([k, v]) => [k, f(v)]));
}

export function selectRows(b: EncodedBatch, idx: Int32Array): EncodedBatch {
  const numericWidth = b.length ? b.numeric.length / b.length : 0;
  return {
    length: idx.length,
    ids: b.ids.map((a) => pickTyped(a, idx, b.length ? a.length / b.length : 1)),
    numeric: pickTyped(b.numeric, idx, numericWidth),
    labels: mapValues(b.labels, (a) => pickTyped(a, idx)) as EncodedBatch['labels'],
    stage: pickTyped(b.stage, idx),
    request: b.request && pickTyped(b.request, idx),
    user: b.user && pickTyped(b.user, idx),
    teacher: mapValues(b.teacher, (a) => pickTyped(a, idx)),
    truth: mapValues(b.truth, (a) => pickTyped(a, idx)),
  };
}

function concatTyped<T extends Int32Array | Uint8Array | Float32Array>(parts: T[]): T {
  const n = parts.reduce((s, p) => s + p.length, 0);
  const out = new (parts[0]!.constructor as new (n: number) => T)(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function concatBatches(parts: EncodedBatch[]): EncodedBatch {
  if (parts.length === 1) return parts[0]!;
  const first = parts[0]!;
  const mapConcat = <V extends Uint8Array | Float32Array>(get: (b: EncodedBatch) => Map<string, V>) =>
    new Map([...get(first).keys()].map((k) => [k, concatTyped(parts.map((p) => get(p).get(k)!))]));
  return {
    length: parts.reduce((s, p) => s + p.length, 0),
    ids: first.ids.map((_, i) => concatTyped(parts.map((p) => p.ids[i]!))),
    numeric: concatTyped(parts.map((p) => p.numeric)),
    labels: mapConcat((b) => b.labels) as EncodedBatch['labels'],
    stage: concatTyped(parts.map((p) => p.stage)),
    request: first.request && concatTyped(parts.map((p) => p.request!)),
    user: first.user && concatTyped(parts.map((p) => p.user!)),
    teacher: mapConcat((b) => b.teacher),
    truth: mapConcat((b) => b.truth),
  };
}

// ---- the epoch pipeline ------------------------------------------------------------------------

export interface BatchPlan {
  /** Rows of these stages are kept (index into STAGES). */
  keepStage: [boolean, boolean, boolean];
  /** Minibatches of whole requests (list-wise losses, distillation, candidate sampling). */
  wholeRequests: boolean;
  /** Candidates kept per request and stage (null = all); index 0 (exposures) is always null. */
  sampleCounts: [null, number | null, number | null];
  batchSize: number;
  shuffle: boolean;
  bufferRows: number;
}

/** Picks k of the given rows uniformly without replacement (partial Fisher–Yates). */
function sampleWithoutReplacement(rows: number[], k: number, rng: Rng): number[] {
  if (k >= rows.length) return rows;
  const a = rows.slice();
  for (let i = 0; i < k; i++) {
    const j = i + rng.int(a.length - i);
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
  }
  return a.slice(0, k).sort((x, y) => x - y);
}

/** Units (rows or requests) waiting in the shuffle buffer. */
class ShuffleBuffer {
  parts: EncodedBatch[] = [];
  unitLengths: number[] = [];
  rows = 0;
  add(part: EncodedBatch, unitLengths: number[]): void {
    if (part.length === 0) return;
    this.parts.push(part);
    this.unitLengths.push(...unitLengths);
    this.rows += part.length;
  }
}

export async function* epochBatches(source: AsyncIterable<EncodedBatch>, plan: BatchPlan, rng: Rng): AsyncGenerator<EncodedBatch> {
  const buffer = new ShuffleBuffer();
  let carry: EncodedBatch | null = null; // the last, possibly unfinished request of a read batch
  let carryFrom = 0; // where the carry starts in its read batch (for error messages)
  const finished = new IdBits(); // not a Set: more than 16,777,216 requests are fine

  const flush = function* (final: boolean): Generator<EncodedBatch> {
    if (buffer.rows === 0) return;
    const all = concatBatches(buffer.parts);
    const lengths = buffer.unitLengths;
    const starts: number[] = [];
    let at = 0;
    for (const len of lengths) {
      starts.push(at);
      at += len;
    }
    const order = Int32Array.from(starts.keys());
    if (plan.shuffle) rng.shuffle(order);
    let picked: number[] = [];
    let leftoverFrom = order.length;
    for (let u = 0; u < order.length; u++) {
      const unit = order[u]!;
      for (let r = 0; r < lengths[unit]!; r++) picked.push(starts[unit]! + r);
      if (picked.length >= plan.batchSize) {
        yield selectRows(all, Int32Array.from(picked));
        picked = [];
        leftoverFrom = u + 1;
      }
    }
    buffer.parts = [];
    buffer.unitLengths = [];
    buffer.rows = 0;
    if (picked.length === 0) return;
    if (final) yield selectRows(all, Int32Array.from(picked));
    else {
      // Units that did not fill a minibatch wait for the next buffer.
      const rest = Array.from(order.subarray(leftoverFrom));
      buffer.add(selectRows(all, Int32Array.from(picked)), rest.map((u) => lengths[u]!));
    }
  };

  const keepRowsOfRequest = (b: EncodedBatch, from: number, to: number, out: number[]) => {
    const byStage: number[][] = [[], [], []];
    for (let i = from; i < to; i++) if (plan.keepStage[b.stage[i]!]) byStage[b.stage[i]!]!.push(i);
    const kept = [...byStage[0]!];
    for (const s of [1, 2] as const) {
      const k = plan.sampleCounts[s];
      kept.push(...(k === null ? byStage[s]! : sampleWithoutReplacement(byStage[s]!, k, rng)));
    }
    kept.sort((x, y) => x - y);
    out.push(...kept);
    return kept.length;
  };

  const ingest = function* (b: EncodedBatch, final: boolean): Generator<EncodedBatch> {
    const rows: number[] = [];
    const units: number[] = [];
    let end = b.length;
    if (plan.wholeRequests) {
      if (!b.request) throw new DataError('whole-request batches need data.columns.request');
      const req = b.request;
      let start = 0;
      // Hold back the last request unless the stream has ended: it may continue in the next read.
      if (!final) {
        let i = b.length - 1;
        while (i > 0 && req[i - 1] === req[b.length - 1]) i--;
        end = i;
      }
      while (start < end) {
        let stop = start + 1;
        while (stop < end && req[stop] === req[start]) stop++;
        const id = req[start]!;
        if (finished.has(id)) throw notContiguous(id, start - carried);
        finished.add(id);
        const n = keepRowsOfRequest(b, start, stop, rows);
        if (n > 0) units.push(n);
        start = stop;
      }
      carry = end < b.length ? selectRows(b, Int32Array.from({ length: b.length - end }, (_, i) => end + i)) : null;
      carryFrom = end - carried;
    } else {
      for (let i = 0; i < b.length; i++) if (plan.keepStage[b.stage[i]!]) rows.push(i);
      for (let i = 0; i < rows.length; i++) units.push(1);
    }
    if (rows.length) buffer.add(selectRows(b, Int32Array.from(rows)), units);
    if (buffer.rows >= plan.bufferRows || final) yield* flush(final);
  };

  // Rows of the previous read batch in front of the current one (a held-back request), and where the
  // current one came from: both only to name the file, row and request of a non-contiguous request.
  let carried = 0;
  let origin: EncodedBatch['origin'];
  const notContiguous = (id: number, row: number): DataError => {
    const key = origin && id < origin.requestKeys.size ? origin.requestKeys.keyOf(id) : `#${id}`;
    const where = origin && row >= 0 ? `${origin.file}: row ${origin.firstRow + row}: ` : '';
    return new DataError(
      `${where}request ${key} appears again after other requests (its rows are not contiguous); whole-request training needs data grouped by request: sort the files by the request column first`,
    );
  };
  for await (const batch of source) {
    const prev = carry as EncodedBatch | null; // set by ingest
    const b: EncodedBatch = prev ? concatBatches([prev, batch]) : batch;
    carried = prev ? prev.length : 0;
    origin = batch.origin;
    carry = null;
    yield* ingest(b, false);
  }
  const last: EncodedBatch | null = carry;
  carried = -carryFrom;
  if (last) yield* ingest(last, true);
  else yield* flush(true);
}
