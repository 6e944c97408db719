/**
 * Saving and loading a trained model: dense weights in tfjs's weights format (model.json with a
 * weightsManifest + weights.bin) plus the embedding tables (embeddings.bin), and for checkpoints
 * the optimizer state of both. Loading checks every name and shape.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { DataError } from '../base/errors.js';
import type { EmbeddingTables } from '../models/embeddings.js';
import type { ParamStore } from '../models/layers.js';
import { replaceFolderAtomic, writeAtomic } from './atomic.js';
import { isRecord, readJsonFile } from './json-file.js';
import { MODEL_FILES } from './layout.js';

interface WeightSpec {
  name: string;
  shape: number[];
  dtype: 'float32';
}

interface TableSpec {
  feature: string;
  rows: number;
  dim: number;
  slots: ('weights' | 'm' | 'v')[];
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

function readFloat32(file: string): Float32Array {
  const buf = readFileSync(file);
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

/**
 * Writes a model folder. With `optimizerState`, also the dense optimizer's slots and the sparse
 * moments, so training can resume exactly. The folder is replaced whole.
 */
export function saveModel(
  dir: string,
  modelType: string,
  params: ParamStore,
  tables: EmbeddingTables,
  optimizerState?: { name: string; tensor: tf.Tensor }[],
): void {
  replaceFolderAtomic(dir, (tmp) => {
    const specs: WeightSpec[] = [];
    const parts: Float32Array[] = [];
    for (const [name, v] of params.variables) {
      specs.push({ name, shape: v.shape, dtype: 'float32' });
      parts.push(v.dataSync() as Float32Array);
    }
    writeAtomic(path.join(tmp, MODEL_FILES.weights), concatFloat32(parts));
    const withSlots = optimizerState !== undefined;
    const tableSpecs: TableSpec[] = [];
    const tableParts: Float32Array[] = [];
    for (const t of tables.tables) {
      const slots: TableSpec['slots'] = ['weights'];
      tableParts.push(t.weights);
      if (withSlots && t.m) (slots.push('m'), tableParts.push(t.m));
      if (withSlots && t.v) (slots.push('v'), tableParts.push(t.v));
      tableSpecs.push({ feature: t.feature.name, rows: t.rows, dim: t.dim, slots });
    }
    writeAtomic(path.join(tmp, MODEL_FILES.embeddings), concatFloat32(tableParts));
    const manifest: ModelManifest = {
      format: 'resflow-model-1',
      modelType,
      weightsManifest: [{ paths: [MODEL_FILES.weights], weights: specs }],
      embeddings: { path: MODEL_FILES.embeddings, tables: tableSpecs, step: tables.steps },
    };
    if (optimizerState) {
      manifest.optimizer = { path: MODEL_FILES.optimizer, weights: optimizerState.map((w) => ({ name: w.name, shape: w.tensor.shape, dtype: 'float32' })) };
      writeAtomic(path.join(tmp, MODEL_FILES.optimizer), concatFloat32(optimizerState.map((w) => w.tensor.dataSync() as Float32Array)));
    }
    writeAtomic(path.join(tmp, MODEL_FILES.manifest), JSON.stringify(manifest, null, 2) + '\n');
  });
}

function readManifest(mfile: string): ModelManifest {
  const doc = readJsonFile(mfile);
  if (!isRecord(doc)) throw new DataError(`${mfile}: expected a model manifest (an object with format, weightsManifest and embeddings)`);
  if (doc['format'] !== 'resflow-model-1') throw new DataError(`${mfile}: unknown model format ${String(doc['format'])}`);
  const dense = doc['weightsManifest'];
  if (!Array.isArray(dense) || !isRecord(dense[0]) || !Array.isArray(dense[0]['paths']) || !Array.isArray(dense[0]['weights'])) {
    throw new DataError(`${mfile}: \`weightsManifest\` should be a list with one { paths, weights } entry`);
  }
  const emb = doc['embeddings'];
  if (!isRecord(emb) || typeof emb['path'] !== 'string' || !Array.isArray(emb['tables'])) throw new DataError(`${mfile}: \`embeddings\` should be { path, tables, step }`);
  return doc as unknown as ModelManifest;
}

/** Loads weights into freshly built params and tables; returns the optimizer state if saved. */
export function loadModel(dir: string, params: ParamStore, tables: EmbeddingTables): { name: string; tensor: tf.Tensor }[] | undefined {
  const mfile = path.join(dir, MODEL_FILES.manifest);
  if (!existsSync(mfile)) throw new DataError(`${dir}: no saved model (model.json missing)`);
  const manifest = readManifest(mfile);

  const dense = readFloat32(path.join(dir, manifest.weightsManifest[0]!.paths[0]!));
  let at = 0;
  for (const spec of manifest.weightsManifest[0]!.weights) {
    const v = params.variables.get(spec.name);
    if (!v) throw new DataError(`${mfile}: weight ${spec.name} does not exist in the model built from the config`);
    if (v.shape.join('x') !== spec.shape.join('x')) throw new DataError(`${mfile}: weight ${spec.name} has shape ${spec.shape}, the model expects ${v.shape}`);
    const size = spec.shape.reduce((a, b) => a * b, 1);
    v.assign(tf.tensor(dense.subarray(at, at + size), spec.shape));
    at += size;
  }
  if (params.variables.size !== manifest.weightsManifest[0]!.weights.length) throw new DataError(`${mfile}: the saved model and the config's model have different weights`);

  const emb = readFloat32(path.join(dir, manifest.embeddings.path));
  at = 0;
  manifest.embeddings.tables.forEach((spec, i) => {
    const t = tables.tables[i];
    if (!t || t.feature.name !== spec.feature || t.rows !== spec.rows || t.dim !== spec.dim) {
      throw new DataError(`${mfile}: embedding table ${spec.feature} (${spec.rows}x${spec.dim}) does not match the config's features`);
    }
    const size = spec.rows * spec.dim;
    for (const slot of spec.slots) {
      const target = slot === 'weights' ? t.weights : slot === 'm' ? t.m : t.v;
      if (target) target.set(emb.subarray(at, at + size));
      at += size;
    }
  });
  tables.steps = manifest.embeddings.step;

  if (!manifest.optimizer) return undefined;
  const opt = readFloat32(path.join(dir, manifest.optimizer.path));
  at = 0;
  return manifest.optimizer.weights.map((spec) => {
    const size = spec.shape.reduce((a, b) => a * b, 1);
    const tensor = tf.tensor(opt.slice(at, at + size), spec.shape);
    at += size;
    return { name: spec.name, tensor };
  });
}
