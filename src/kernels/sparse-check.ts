/** The check that two implementations of the sparse kernels give the same bits (the native one's load-time self-check). */
import type { EmbeddingOptimizerConfig } from '../config/experiment.js';
import { Rng } from '../base/rng.js';
import { sparseStep, type SparseKernels, type TableData } from './sparse-api.js';

/**
 * Runs both kernels on the same random tables (a single-id table, a mean-pooled and a sum-pooled
 * list table with padding, repeated ids) for a few steps of each optimizer, with enough ids to
 * take the addon's threaded path. Null when every output and every table agrees bit for bit;
 * otherwise what differed.
 */
export function compareKernels(a: SparseKernels, b: SparseKernels, seed = 7): string | null {
  const rng = new Rng(seed);
  const n = 600;
  const shapes = [
    { rows: 50, dim: 8, width: 1, mean: false },
    { rows: 300, dim: 5, width: 4, mean: true },
    { rows: 20, dim: 16, width: 3, mean: false },
  ];
  const base = { beta1: 0.9, beta2: 0.999, epsilon: 1e-7, initial_accumulator: 0.1 };
  const optimizers: EmbeddingOptimizerConfig[] = [
    { ...base, type: 'adam', lr: 0.01 },
    { ...base, type: 'adagrad', lr: 0.05 },
    { ...base, type: 'sgd', lr: 0.1 },
  ];
  for (const optimizer of optimizers) {
    let offset = 0;
    const make = (): TableData[] => {
      offset = 0;
      return shapes.map((s) => {
        const size = s.rows * s.dim;
        const t: TableData = {
          weights: new Float32Array(size),
          m: optimizer.type === 'sgd' ? null : new Float32Array(size),
          v: optimizer.type === 'adam' ? new Float32Array(size) : null,
          ...s,
          offset,
        };
        offset += s.dim;
        return t;
      });
    };
    const ta = make();
    const tb = make();
    const D = offset + 1;
    for (let k = 0; k < ta.length; k++) {
      for (let i = 0; i < ta[k]!.weights.length; i++) ta[k]!.weights[i] = tb[k]!.weights[i] = rng.next() - 0.5;
      if (ta[k]!.m) for (let i = 0; i < ta[k]!.m!.length; i++) ta[k]!.m![i] = tb[k]!.m![i] = optimizer.type === 'adagrad' ? optimizer.initial_accumulator : 0;
    }
    for (let stepNo = 1; stepNo <= 3; stepNo++) {
      const ids = shapes.map((s) => Int32Array.from({ length: n * s.width }, () => (rng.next() < 0.1 ? -1 : rng.int(s.rows))));
      const xa = new Float32Array(n * D);
      const xb = new Float32Array(n * D);
      a.lookup(ta, ids, n, xa, D);
      b.lookup(tb, ids, n, xb, D);
      const diff = firstDifference(xa, xb);
      if (diff >= 0) return `${optimizer.type} step ${stepNo}: lookups differ at ${diff} (${xa[diff]} vs ${xb[diff]})`;
      const gradX = Float32Array.from({ length: n * D }, () => (rng.next() - 0.5) * 0.1);
      const step = sparseStep(optimizer, stepNo);
      a.update(ta, ids, n, gradX, D, step);
      b.update(tb, ids, n, gradX, D, step);
      for (let k = 0; k < ta.length; k++) {
        for (const slot of ['weights', 'm', 'v'] as const) {
          const p = ta[k]![slot];
          const q = tb[k]![slot];
          if (p === null || q === null) continue;
          const at = firstDifference(p, q);
          if (at >= 0) return `${optimizer.type} step ${stepNo}: table ${k} ${slot} differ at ${at} (${p[at]} vs ${q[at]})`;
        }
      }
    }
  }
  return null;
}

function firstDifference(p: Float32Array, q: Float32Array): number {
  if (p.length !== q.length) return 0;
  for (let i = 0; i < p.length; i++) if (!Object.is(p[i], q[i])) return i;
  return -1;
}
