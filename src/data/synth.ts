/**
 * `data synth`: writes the synthetic search funnel (the generative model is described in
 * synth-model.ts) as train/valid/eval files, split 80/10/10 by request in request order.
 * The world is built once; requests are generated and written in batches.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DataError } from '../base/errors.js';
import { writeTable, type ColumnBatch } from './write.js';
import { allocBatch, toColumnBatch } from './synth-batch.js';
import { PRESETS, SYNTH_MODEL, SYNTH_SCHEMA, type SynthPreset, type SynthPresetParams } from './synth-model.js';
import { RequestScratch, generateRequest, requestSizes } from './synth-request.js';
import { buildWorld } from './synth-world.js';

export { PRESETS, SYNTH_MODEL, SYNTH_SCHEMA, type SynthPreset, type SynthPresetParams } from './synth-model.js';
export { expectedPurchases, positionBias } from './funnel.js';

export interface SynthOptions {
  preset: SynthPreset;
  seed: number;
  outDir: string;
  format?: 'parquet' | 'arrow';
  onProgress?: (rowsWritten: number, rowsTotal: number) => void;
}

export interface SynthSummary {
  files: Record<'train' | 'valid' | 'eval', string>;
  rows: Record<'train' | 'valid' | 'eval', number>;
  requests: Record<'train' | 'valid' | 'eval', number>;
}

function checkOptions(opts: SynthOptions): SynthPresetParams {
  const p = PRESETS[opts.preset];
  if (!p) throw new DataError(`unknown synthetic preset '${String(opts.preset)}' (expected one of ${Object.keys(PRESETS).join(', ')})`);
  if (!Number.isSafeInteger(opts.seed) || opts.seed < 0) throw new DataError(`seed must be a non-negative integer, got ${opts.seed}`);
  const format = opts.format ?? 'parquet';
  if (format !== 'parquet' && format !== 'arrow') throw new DataError(`format must be parquet or arrow, got '${String(format)}'`);
  return p;
}

/** Generates the preset's train/valid/eval files into outDir. */
export async function synthesize(opts: SynthOptions): Promise<SynthSummary> {
  const p = checkOptions(opts);
  const format = opts.format ?? 'parquet';
  const ext = format === 'arrow' ? 'arrow' : 'parquet';
  mkdirSync(opts.outDir, { recursive: true });
  const world = buildWorld(p, opts.seed);

  const N = p.requests;
  const nTrain = Math.round(N * SYNTH_MODEL.splits.train);
  const nValid = Math.round(N * SYNTH_MODEL.splits.valid);
  const ranges = {
    train: [0, nTrain],
    valid: [nTrain, nTrain + nValid],
    eval: [nTrain + nValid, N],
  } as const;

  // pool sizes are the first draws of each request's stream, so the total is known before generating
  const poolSize = new Int32Array(N);
  let rowsTotal = 0;
  for (let r = 0; r < N; r++) {
    poolSize[r] = requestSizes(p, opts.seed, r).pool;
    rowsTotal += poolSize[r]!;
  }

  const scratch = new RequestScratch(p.poolMax, p.items);
  let rowsWritten = 0;
  opts.onProgress?.(0, rowsTotal);
  const summary: SynthSummary = {
    files: { train: '', valid: '', eval: '' },
    rows: { train: 0, valid: 0, eval: 0 },
    requests: { train: 0, valid: 0, eval: 0 },
  };
  for (const split of ['train', 'valid', 'eval'] as const) {
    const [from, to] = ranges[split];
    const file = join(opts.outDir, `${split}.${ext}`);
    function* batches(): Generator<ColumnBatch> {
      for (let r0 = from; r0 < to; r0 += p.batchRequests) {
        const r1 = Math.min(to, r0 + p.batchRequests);
        let n = 0;
        for (let r = r0; r < r1; r++) n += poolSize[r]!;
        const arrays = allocBatch(n);
        let at = 0;
        for (let r = r0; r < r1; r++) at += generateRequest(world, opts.seed, r, arrays, at, scratch);
        yield toColumnBatch(arrays, n);
        rowsWritten += n;
        opts.onProgress?.(rowsWritten, rowsTotal);
      }
    }
    const { rows } = await writeTable(file, SYNTH_SCHEMA, batches(), { format });
    summary.files[split] = file;
    summary.rows[split] = rows;
    summary.requests[split] = to - from;
  }
  return summary;
}
