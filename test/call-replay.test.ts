/**
 * bench/call-replay.ts, behind bench/step-replay.ts: recorded calls replay on copies that keep the
 * recording's aliasing (a call that reads what an earlier one wrote still does) and never touch the
 * original buffers. Checked with a plain JavaScript "kernel", and with the addon's sgemm on values
 * worked out by hand (skipped, with the reason, without the addon).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copiedCalls, type RecordedCall } from '../bench/call-replay.js';
import { loadAddon, addonUnavailableReason } from '../src/kernels/addon.js';

test('copied calls: shared views stay shared, distinct ones stay distinct, originals untouched', () => {
  const heap = new Float32Array(8);
  const a = heap.subarray(0, 2); // the first call's output ...
  const aAgain = new Float32Array(heap.buffer, 0, 2); // ... read by the second through another view
  const b = heap.subarray(2, 4);
  const out = heap.subarray(4, 6);
  const fill = (dst: Float32Array, x: number) => dst.fill(x);
  const add = (x: Float32Array, y: Float32Array, dst: Float32Array) => dst.forEach((_, i) => (dst[i] = x[i]! + y[i]!));
  const fillB = (tables: Float32Array[], x: number) => tables[0]!.fill(x);
  const recorded: RecordedCall[][] = [[
    [fill as RecordedCall[0], [a, 3]],
    [fillB as RecordedCall[0], [[b], 4]],
    [add as RecordedCall[0], [aAgain, b, out]],
  ]];
  const [calls] = copiedCalls(recorded);
  const [, [copyA]] = calls![0]!;
  const [, [[copyB]]] = calls![1]! as [unknown, [Float32Array[]]];
  const [, [copyA2, copyB2, copyOut]] = calls![2]! as [unknown, Float32Array[]];
  assert.equal(copyA2, copyA, 'two views of the same bytes share one copy');
  assert.equal(copyB2, copyB, 'a view inside an array is copied too, and shared');
  assert.notEqual(copyA, a);
  assert.notEqual(copyOut, copyA);
  for (const [fn, args] of calls!) fn(...args);
  assert.deepEqual([...(copyOut as Float32Array)], [7, 7]);
  assert.deepEqual([...heap], [0, 0, 0, 0, 0, 0, 0, 0], 'the replay wrote only to its copies');
});

const native = loadAddon();
const skip = native === null ? `native addon not available: ${addonUnavailableReason()}` : false;

test("copied calls: the addon's sgemm replayed gives the recorded chain's values", { skip }, () => {
  const heap = new Float32Array(16);
  const A = heap.subarray(0, 4); // [[1, 2], [3, 4]]
  A.set([1, 2, 3, 4]);
  const B = heap.subarray(4, 8); // [[5, 6], [7, 8]]
  B.set([5, 6, 7, 8]);
  const AB = heap.subarray(8, 12);
  const ABB = heap.subarray(12, 16);
  const sgemm = native!.sgemm as unknown as RecordedCall[0];
  const recorded: RecordedCall[][] = [[
    [sgemm, [false, false, 2, 2, 2, A, B, AB, 1]],
    [sgemm, [false, false, 2, 2, 2, new Float32Array(heap.buffer, 32, 4), B, ABB, 1]],
  ]];
  const [calls] = copiedCalls(recorded);
  for (const [fn, args] of calls!) fn.apply(native, args);
  // AB = [[19, 22], [43, 50]]; (AB)B = [[19·5 + 22·7, 19·6 + 22·8], [43·5 + 50·7, 43·6 + 50·8]]
  assert.deepEqual([...(calls![0]![1][7] as Float32Array)], [19, 22, 43, 50]);
  assert.deepEqual([...(calls![1]![1][7] as Float32Array)], [249, 290, 565, 658]);
  assert.deepEqual([...heap.subarray(8)], [0, 0, 0, 0, 0, 0, 0, 0], 'the originals were not written');
});
