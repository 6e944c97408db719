/** The check that two implementations of the sparse kernels give the same bits (the native one's load-time self-check). */
import type { EmbeddingOptimizerConfig } from '../config/experiment.js';
import { Rng } from '../base/rng.js';
import { sparseStep, type SparseKernels, type TableData } from './sparse-api.js';
import { RowState } from './row-state.js';

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
          state: optimizer.type === 'sgd' ? null : new RowState(s.rows, s.dim, optimizer.type === 'adam' ? 2 : 1, optimizer.type === 'adagrad' ? optimizer.initial_accumulator : 0),
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
        const [sa, sb] = [ta[k]!.state, tb[k]!.state];
        if (sa && sb && sa.used !== sb.used) return `${optimizer.type} step ${stepNo}: table ${k} has state for ${sa.used} vs ${sb.used} rows`;
        const arrays: [string, Float32Array | Int32Array | null | undefined, Float32Array | Int32Array | null | undefined][] = [
          ['weights', ta[k]!.weights, tb[k]!.weights],
          ['slotOf', sa?.slotOf, sb?.slotOf],
          ['m', sa?.m.subarray(0, sa.used * sa.dim), sb?.m.subarray(0, sb.used * sb.dim)],
          ['v', sa?.v?.subarray(0, sa.used * sa.dim), sb?.v?.subarray(0, sb.used * sb.dim)],
        ];
        for (const [slot, p, q] of arrays) {
          if (!p || !q) continue;
          const at = firstDifference(p, q);
          if (at >= 0) return `${optimizer.type} step ${stepNo}: table ${k} ${slot} differ at ${at} (${p[at]} vs ${q[at]})`;
        }
      }
    }
  }
  return null;
}

function firstDifference(p: Float32Array | Int32Array, q: Float32Array | Int32Array): number {
  if (p.length !== q.length) return 0;
  for (let i = 0; i < p.length; i++) if (!Object.is(p[i], q[i])) return i;
  return -1;
}
