/**
 * bench/thread-cpu.ts, behind bench:train's line on the CPU of threads besides the main one: a worker
 * thread that spins for a while shows up as the others' CPU, a main thread that spins as the main
 * thread's. Skipped, with the reason, where /proc/self/task gives no per-thread times (not Linux).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { othersShare, threadCpu } from '../bench/thread-cpu.js';

const skip = threadCpu() === null ? 'no per-thread CPU times here (/proc/self/task/<tid>/schedstat is Linux only)' : false;

/** Busy-waits on the calling thread for `ms` milliseconds of wall-clock. */
const spin = (ms: number) => {
  const end = performance.now() + ms;
  let x = 0;
  while (performance.now() < end) x += Math.sqrt(x + 1);
  return x;
};

test('thread CPU: a spinning worker is counted as the others, the main thread as itself', { skip }, async () => {
  // The main thread alone: nearly all of the CPU is its own.
  let before = threadCpu();
  spin(150);
  const mainOnly = othersShare(before, threadCpu());
  assert.ok(mainOnly !== null && mainOnly < 0.3, `main thread spinning: others' share ${mainOnly}`);

  // A worker spins 300 ms while the main thread waits (sleeping, not on a CPU): most of the CPU is the worker's.
  const worker = new Worker(`const end = performance.now() + 300; let x = 0; while (performance.now() < end) x += Math.sqrt(x + 1); require('node:worker_threads').parentPort.postMessage(x);`, { eval: true });
  before = threadCpu();
  await new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  const withWorker = othersShare(before, threadCpu());
  await worker.terminate();
  assert.ok(withWorker !== null && withWorker > 0.5, `worker spinning: others' share ${withWorker}`);
  const now = threadCpu()!;
  assert.ok(now.main > 0 && now.others >= 0);
});

test('thread CPU: no share without both readings or without any CPU between them', () => {
  assert.equal(othersShare(null, { main: 1, others: 1 }), null);
  assert.equal(othersShare({ main: 5, others: 5 }, null), null);
  assert.equal(othersShare({ main: 5, others: 5 }, { main: 5, others: 5 }), null);
  // 30 ns of the main thread and 10 of the others: a quarter; a thread that exited (others fall) counts as none.
  assert.equal(othersShare({ main: 10, others: 20 }, { main: 40, others: 30 }), 0.25);
  assert.equal(othersShare({ main: 10, others: 20 }, { main: 40, others: 5 }), 0);
});
