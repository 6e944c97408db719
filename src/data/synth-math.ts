/** Small numeric helpers of the synthetic funnel: rounding to published precision, prices, draws. */
import type { RandomSource } from '../base/rng.js';

/** The KeyedRng streams of the generator: one for the world, one per request (keyed by its index). */
export const STREAM = { world: 1, request: 2 } as const;

export function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

const POW10: number[] = [];
for (let e = 0; e <= 40; e++) POW10.push(10 ** e);

/** Rounds a probability to `digits` significant digits (as a float32). */
export function roundSignificant(x: number, digits: number): number {
  if (!(x > 0)) return 0;
  if (x >= 1) return 1;
  const e = Math.floor(Math.log10(x));
  const k = digits - 1 - e; // scale by 10^(digits - 1 - e)
  if (k > 40) return 0;
  const s = POW10[k]!;
  return Math.fround(Math.round(x * s) / s);
}

/** Rounds a probability to 3 significant digits (as a float32). */
export function q3(x: number): number {
  return roundSignificant(x, 3);
}

/** A shop price point: 2 significant digits minus one cent (0.99, 19.99, 24.99, 129.99, ...). */
export function pricePoint(x: number): number {
  const e = Math.max(0, Math.floor(Math.log10(Math.max(1, x))));
  const step = 10 ** Math.max(0, e - 1);
  return Math.max(1, Math.round(x / step) * step) - 0.01;
}

export function pickCumulative(cum: Float64Array, u: number): number {
  const target = u * cum[cum.length - 1]!;
  let lo = 0;
  let hi = cum.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cum[mid]! > target) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

export function gaussVec(rng: RandomSource, out: Float64Array, offset: number, dim: number, std: number, base?: Float64Array, baseOffset = 0): void {
  for (let d = 0; d < dim; d++) out[offset + d] = (base ? base[baseOffset + d]! : 0) + std * rng.normal();
}
