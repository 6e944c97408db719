/** Float32 test data and a bit-for-bit comparison, for the tests of kernels that must keep the same bits. */
import assert from 'node:assert/strict';
import { Rng } from '../../src/base/rng.js';

/** n values in [-2, 2), seeded. */
export const randomFloats = (n: number, seed: number): Float32Array => {
  const r = new Rng(seed);
  return Float32Array.from({ length: n }, () => (r.next() - 0.5) * 4);
};

/** Asserts that two arrays hold the same bytes (so -0 and 0, or two NaNs, are told apart). */
export const assertSameBits = (a: Float32Array, b: Float32Array, what: string): void =>
  assert.equal(Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)), 0, what);
