/**
 * Pieces shared by the registry's models: dense options from the config, softmax gates, mixtures
 * of experts and per-task towers (hidden layers, then a logit).
 */
import * as tf from '@tensorflow/tfjs';
import { suggest, type Path, type SchemaIssue } from '../config/schema.js';
import type { CommonModelParams, InputField } from './model.js';
import { LogitLayer, Mlp, linear, type DenseOptions, type ForwardContext, type ParamStore, type StateUpdate } from './layers.js';

/** The common dense options (activation, batch norm, dropout) of a model's parameters. */
export function denseOptions(p: CommonModelParams): DenseOptions {
  return { activation: p.activation, batchNorm: p.batch_norm, dropout: p.dropout };
}

/**
 * Dropout seeds: every dense block of a model needs its own offset so that masks differ between
 * blocks. Each call hands out a fresh base for one Mlp (its blocks add their layer index).
 */
export class SeedBases {
  private next = 0;
  take(): number {
    return 1000 * this.next++;
  }
}

/** A softmax gate: weights over n experts per row, softmax(x W + b) [B, n]. */
export class Gate {
  private readonly W: tf.Variable;
  private readonly b: tf.Variable;
  constructor(params: ParamStore, readonly name: string, inDim: number, readonly n: number) {
    this.W = params.matrix(`${name}/kernel`, inDim, n);
    this.b = params.constant(`${name}/bias`, [n], 0);
  }
  apply(x: tf.Tensor2D): tf.Tensor2D {
    return tf.softmax(linear(x, this.W as tf.Tensor2D, this.b as tf.Tensor1D)) as tf.Tensor2D;
  }
}

/**
 * Gate-weighted sum of expert outputs: sum_e gate[:, e] * experts[e]; gate [B, E], experts E x [B, D].
 * Written as a sum of column-scaled experts: on wasm this trains about twice as fast as stacking the
 * experts into [B, E, D] (a broadcast multiply and a reduction over a middle axis) or a batched matmul.
 */
export function mixture(gate: tf.Tensor2D, experts: tf.Tensor2D[]): tf.Tensor2D {
  if (experts.length === 1) return tf.mul(gate, experts[0]!) as tf.Tensor2D; // the gate is all ones
  return tf.addN(experts.map((h, e) => tf.mul(tf.slice(gate, [0, e], [-1, 1]), h))) as tf.Tensor2D;
}

/** A task tower: hidden layers (possibly none), then one logit per row. */
export class Tower {
  readonly mlp: Mlp;
  readonly head: LogitLayer;
  /** Width of the representation the logit layer reads (the input width when there are no hidden layers). */
  readonly reprDim: number;
  constructor(params: ParamStore, readonly name: string, inDim: number, hidden: number[], opts: DenseOptions, seedBase: number) {
    this.mlp = new Mlp(params, name, inDim, hidden, opts, seedBase);
    this.reprDim = this.mlp.outDim || inDim;
    this.head = new LogitLayer(params, `${name}/logit`, this.reprDim);
  }
  hiddenOf(x: tf.Tensor2D, ctx: ForwardContext, updates: StateUpdate[]): tf.Tensor2D {
    return this.mlp.apply(x, ctx, updates);
  }
  apply(x: tf.Tensor2D, ctx: ForwardContext, updates: StateUpdate[]): tf.Tensor1D {
    return this.head.apply(this.mlp.apply(x, ctx, updates));
  }
}

/**
 * The input columns of the named features as runs [start, end) of x, in x's order, adjacent
 * features merged (two_tower.ts, cold.ts; the ONNX export slices the same runs).
 */
export function columnRuns(layout: readonly InputField[], names: readonly string[]): [number, number][] {
  const runs: [number, number][] = [];
  for (const f of layout) {
    if (!names.includes(f.name)) continue;
    const last = runs[runs.length - 1];
    if (last && last[1] === f.offset) last[1] += f.width;
    else runs.push([f.offset, f.offset + f.width]);
  }
  return runs;
}

/** The columns of x in `runs` side by side (x itself when they are all of it). */
export function selectColumns(x: tf.Tensor2D, runs: readonly [number, number][]): tf.Tensor2D {
  if (runs.length === 1 && runs[0]![0] === 0 && runs[0]![1] === x.shape[1]) return x;
  const parts = runs.map(([s, e]) => tf.slice(x, [0, s], [-1, e - s]) as tf.Tensor2D);
  return parts.length === 1 ? parts[0]! : (tf.concat(parts, 1) as tf.Tensor2D);
}

/**
 * Feature names in a model parameter checked against the config's features: each must exist (an
 * unknown one is named by its key, with a did-you-mean) and appear once.
 */
export function checkFeatureList(names: readonly string[], features: readonly string[], path: Path, issues: SchemaIssue[]): void {
  const seen = new Set<string>();
  names.forEach((n, i) => {
    if (!features.includes(n)) {
      const hint = suggest(n, features);
      issues.push({ path: [...path, i], message: `no feature named \`${n}\`${hint ? ` (did you mean \`${hint}\`?)` : ''}; features: ${features.join(', ')}` });
    } else if (seen.has(n)) issues.push({ path: [...path, i], message: `feature \`${n}\` is listed twice` });
    seen.add(n);
  });
}
