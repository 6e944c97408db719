/**
 * Saving and loading a trained model: dense weights in tfjs's weights format (model.json with a
 * weightsManifest + weights.bin) plus the embedding tables (embeddings.bin), and for checkpoints
 * the optimizer state of both. Loading checks every name and shape.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, renameSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { DataError } from '../base/errors.js';
import type { EmbeddingTables } from '../models/embeddings.js';
import type { ParamStore } from '../models/layers.js';
import { writeAtomic } from './folder.js';

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
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const specs: WeightSpec[] = [];
  const parts: Float32Array[] = [];
  for (const [name, v] of params.variables) {
    specs.push({ name, shape: v.shape, dtype: 'float32' });
    parts.push(v.dataSync() as Float32Array);
  }
  writeAtomic(path.join(tmp, 'weights.bin'), concatFloat32(parts));
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
  writeAtomic(path.join(tmp, 'embeddings.bin'), concatFloat32(tableParts));
  const manifest: ModelManifest = {
    format: 'resflow-model-1',
    modelType,
    weightsManifest: [{ paths: ['weights.bin'], weights: specs }],
    embeddings: { path: 'embeddings.bin', tables: tableSpecs, step: tables.steps },
  };
  if (optimizerState) {
    manifest.optimizer = { path: 'optimizer.bin', weights: optimizerState.map((w) => ({ name: w.name, shape: w.tensor.shape, dtype: 'float32' })) };
    writeAtomic(path.join(tmp, 'optimizer.bin'), concatFloat32(optimizerState.map((w) => w.tensor.dataSync() as Float32Array)));
  }
  writeAtomic(path.join(tmp, 'model.json'), JSON.stringify(manifest, null, 2) + '\n');
  const old = `${dir}.old-${process.pid}`;
  if (existsSync(dir)) renameSync(dir, old);
  renameSync(tmp, dir);
  rmSync(old, { recursive: true, force: true });
}

/** Loads weights into freshly built params and tables; returns the optimizer state if saved. */
export function loadModel(dir: string, params: ParamStore, tables: EmbeddingTables): { name: string; tensor: tf.Tensor }[] | undefined {
  const mfile = path.join(dir, 'model.json');
  if (!existsSync(mfile)) throw new DataError(`${dir}: no saved model (model.json missing)`);
  const manifest = JSON.parse(readFileSync(mfile, 'utf8')) as ModelManifest;
  if (manifest.format !== 'resflow-model-1') throw new DataError(`${mfile}: unknown model format ${manifest.format}`);

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
