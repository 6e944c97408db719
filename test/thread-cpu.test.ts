/**
 * bench/thread-cpu.ts, behind bench:train's line on the CPU of threads besides the main one: a worker
 * thread that spins for a while shows up as the others' CPU, a main thread that spins as the main
 * thread's. Skipped, with the reason, where /proc/self/task gives no per-thread times (not Linux).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { othersShare, threadCpu } from '../bench/thread-cpu.js';

const skip = threadCpu() === null ? 'no per-thread CPU times here (/proc/self/task/<tid>/schedstat is Linux only)' : false;

/** Nanoseconds the calling thread has run (Linux's /proc/thread-self). */
const ownCpu = () => Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]);

/** Busy-waits on the calling thread until it has run `ms` milliseconds of its own CPU, however loaded the machine. */
const spin = (ms: number) => {
  const end = ownCpu() + ms * 1e6;
  let x = 0;
  while (ownCpu() < end) for (let i = 0; i < 1e4; i++) x += Math.sqrt(x + 1);
  return x;
};

test('thread CPU: a spinning worker is counted as the others, the main thread as itself', { skip }, async () => {
  // The main thread alone: nearly all of the CPU is its own.
  let before = threadCpu();
  spin(150);
  const mainOnly = othersShare(before, threadCpu());
  assert.ok(mainOnly !== null && mainOnly < 0.3, `main thread spinning: others' share ${mainOnly}`);

  // A worker runs 300 ms of its own CPU (read from /proc/thread-self, so a loaded machine that gives it
  // less than a whole core still gets the full amount) while the main thread waits, sleeping. The
  // worker then stays alive until the main thread has read the times: an exited thread's time leaves
  // /proc/self/task, and with it the very CPU this test looks for. It runs this file's ownCpu and
  // spin, their source handed over as text.
  const worker = new Worker(
    `const { readFileSync } = require('node:fs');
     const ownCpu = ${ownCpu};
     const spin = ${spin};
     const { parentPort } = require('node:worker_threads');
     parentPort.on('message', () => {}); // keeps the worker alive until terminate()
     parentPort.postMessage(spin(300));`,
    { eval: true },
  );
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
