/**
 * bench/native-calls.ts, the timer behind bench/step-kernels.ts: its wrappers pass every call
 * through unchanged (a product checked against values worked out by hand), it lists a step's calls in
 * order with their shapes and FLOPs (2·M·N·K), and it refuses steps that make different calls.
 * Skipped, with the reason, without the addon.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadAddon, addonUnavailableReason } from '../src/kernels/addon.js';
import { nativeCallTimer } from '../bench/native-calls.js';

const native = loadAddon();
const skip = native === null ? `native addon not available: ${addonUnavailableReason()}` : false;

test('native call timer: calls pass through, are listed in step order with shapes and FLOPs', { skip }, async () => {
  const timer = nativeCallTimer()!;
  assert.equal(nativeCallTimer(), timer, 'the addon is wrapped once per process');
  // [[1, 2], [3, 4]] · [[5, 6, 7], [8, 9, 10]] = [[21, 24, 27], [47, 54, 61]]
  const A = new Float32Array([1, 2, 3, 4]);
  const B = new Float32Array([5, 6, 7, 8, 9, 10]);
  const C = new Float32Array(6);
  const bias = new Float32Array([-40, 0, 100]);
  const step = () => {
    native!.sgemm(false, false, 2, 3, 2, A, B, C, 1);
    assert.deepEqual([...C], [21, 24, 27, 47, 54, 61]);
    native!.sgemm(true, false, 2, 3, 2, A, B, C, 1, bias, 1);
    // Aᵀ = [[1, 3], [2, 4]]: [[29, 33, 37], [42, 48, 54]], plus the bias, then relu (29 - 40 < 0).
    assert.deepEqual([...C], [0, 33, 137, 2, 48, 154]);
  };
  const { calls, stepMs } = await timer.measure(3, step, 1, false);
  assert.deepEqual(
    calls.map((c) => [c.fn, c.label, c.flops]),
    [
      ['sgemm', 'sgemm NN 2x3x2', 24],
      ['sgemm', 'sgemm TN 2x3x2 +bias relu', 24],
    ],
  );
  // Each step takes at least each of its calls, so the medians keep that order (a sum of medians need not).
  assert.ok(calls.every((c) => c.ms >= 0 && stepMs >= c.ms));
  // Outside measure the wrappers record nothing and still compute.
  native!.sgemm(false, false, 2, 3, 2, A, B, C, 1);
  assert.deepEqual([...C], [21, 24, 27, 47, 54, 61]);
  let s = 0;
  await assert.rejects(
    timer.measure(2, () => {
      for (let i = 0; i <= s; i++) native!.sgemm(false, false, 2, 3, 2, A, B, C, 1);
      s++;
    }, 0, false),
    /the steps do not make the same calls/,
  );
});
