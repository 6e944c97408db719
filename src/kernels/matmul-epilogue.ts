/** The epilogues of tfjs's fused matmul that the native GEMM does not apply itself, in JavaScript. */
import type { BroadcastRows } from './matmul-plan.js';

export type Activation = 'linear' | 'relu' | 'relu6' | 'prelu' | 'leakyrelu' | 'sigmoid' | 'elu';
export const ACTIVATIONS = new Set<string>(['linear', 'relu', 'relu6', 'prelu', 'leakyrelu', 'sigmoid', 'elu']);

/**
 * out = act(out + bias), in place, with tfjs cpu's formulas (computed in double, stored as
 * float32, as the cpu backend does).
 */
export function epilogue(
  out: Float32Array,
  N: number,
  bias: { vals: Float32Array; rows: BroadcastRows } | null,
  act: Activation,
  prelu: { vals: Float32Array; rows: BroadcastRows } | null,
  alpha: number,
): void {
  const rows = N === 0 ? 0 : out.length / N;
  if (bias !== null) {
    const { vals, rows: br } = bias;
    for (let r = 0; r < rows; r++) {
      const o = r * N;
      const b0 = br.rowBase[r]!;
      if (br.step === 1) for (let j = 0; j < N; j++) out[o + j]! += vals[b0 + j]!;
      else {
        const bv = vals[b0]!;
        for (let j = 0; j < N; j++) out[o + j]! += bv;
      }
    }
  }
  const n = out.length;
  switch (act) {
    case 'linear':
      return;
    case 'relu':
      for (let i = 0; i < n; i++) out[i] = Math.max(0, out[i]!);
      return;
    case 'relu6':
      for (let i = 0; i < n; i++) out[i] = Math.min(Math.max(0, out[i]!), 6);
      return;
    case 'leakyrelu':
      for (let i = 0; i < n; i++) {
        const x = out[i]!;
        out[i] = x < 0 ? alpha * x : x;
      }
      return;
    case 'sigmoid':
      for (let i = 0; i < n; i++) out[i] = 1 / (1 + Math.exp(-out[i]!));
      return;
    case 'elu':
      for (let i = 0; i < n; i++) {
        const x = out[i]!;
        out[i] = x >= 0 ? x : Math.exp(x) - 1;
      }
      return;
    case 'prelu': {
      const { vals, rows: pr } = prelu!;
      for (let r = 0; r < rows; r++) {
        const o = r * N;
        const p0 = pr.rowBase[r]!;
        for (let j = 0; j < N; j++) {
          const x = out[o + j]!;
          if (x < 0) out[o + j] = vals[p0 + j * pr.step]! * x;
        }
      }
      return;
    }
  }
}
