/**
 * onnxruntime-node, when it can be loaded (an optional dependency: README, "Serving"). Imported by a
 * name held in a variable so that the build does not need its types; tests that need it skip with
 * the reason when it is missing.
 */
import type { EncodedBatch } from '../../src/data/encode.js';
import type { FeaturesFile } from '../../src/export/onnx.js';
import type { RawBatch } from '../../src/data/raw-batch.js';

export interface OrtTensor {
  data: Float32Array | BigInt64Array;
  dims: readonly number[];
}
export interface OrtSession {
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}
export interface Ort {
  Tensor: new (type: 'int64' | 'float32', data: BigInt64Array | Float32Array, dims: number[]) => OrtTensor;
  InferenceSession: { create(model: string | Uint8Array, opts?: Record<string, unknown>): Promise<OrtSession> };
}

const ORT_MODULE = 'onnxruntime-node';

/** The module, or why it cannot be loaded (for `skip`). */
export async function loadOrt(): Promise<{ ort: Ort | null; reason: string | false }> {
  try {
    const m = (await import(ORT_MODULE)) as { default?: Ort } & Ort;
    const ort = m.InferenceSession ? m : m.default!;
    return { ort, reason: false };
  } catch (err) {
    return { ort: null, reason: `onnxruntime-node cannot be loaded (${(err as Error).message.split('\n')[0]})` };
  }
}

/**
 * The graph's inputs for encoded rows: the table rows of each sparse feature as the encoder made
 * them, and each numeric feature's raw value from the raw batch (null as 0; the graph applies log1p).
 */
export function feedsFor(ort: Ort, features: FeaturesFile, batch: EncodedBatch, raw: RawBatch): Record<string, OrtTensor> {
  const feeds: Record<string, OrtTensor> = {};
  let s = 0;
  for (const f of features.inputs) {
    if (f.kind === 'numeric') {
      const c = raw.columns.get(f.column)!;
      if (c.type !== 'number') throw new Error(`${f.column} is not numeric`);
      const v = new Float32Array(batch.length);
      for (let i = 0; i < batch.length; i++) v[i] = c.valid && !c.valid[i] ? 0 : c.values[i]!;
      feeds[f.name] = new ort.Tensor('float32', v, [batch.length]);
    } else {
      const ids = batch.ids[s++]!;
      feeds[f.name] = new ort.Tensor('int64', BigInt64Array.from(ids, (x) => BigInt(x)), f.kind === 'list' ? [batch.length, f.max_len!] : [batch.length]);
    }
  }
  return feeds;
}
