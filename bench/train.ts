/**
 * Training and scoring throughput of the reference model (bench/reference-model.ts): 20 categorical fields, vocabulary
 * 10,000, dimension 16, ResFlow towers 256 -> 128, 2 tasks, batch 1024, Adam, on in-memory
 * batches (so data reading is not measured). Prints medians of several runs.
 *
 * Rates are per second of wall-clock and per CPU-second of the whole process (process.cpuUsage():
 * every thread, Node's own included), the latter a speed per core when `--threads 1`. Then how much of
 * that CPU threads other than the main one took (bench/thread-cpu.ts): on one thread, V8's compiler
 * and garbage collector, still warming up on a benchmark this short.
 *
 *   npm run bench:train [-- --backend wasm|cpu|tensorflow --steps 60 --repeats 3 --threads N]
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { predict } from '../src/models/bundle.js';
import { FIELDS, VOCAB, denseFlopsPerSample, referenceTrainer } from './reference-model.js';
import { othersShare, threadCpu } from './thread-cpu.js';

const { values: args } = parseArgs({
  options: {
    backend: { type: 'string', default: 'wasm' },
    steps: { type: 'string', default: '40' },
    repeats: { type: 'string', default: '3' },
    batch: { type: 'string', default: '1024' },
    threads: { type: 'string' },
  },
});
const BATCH = Number(args.batch);



const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main() {
  const { backend, bundle, trainer, batches } = await referenceTrainer(BATCH, args.backend!, args.threads);
  const steps = Number(args.steps);
  for (let i = 0; i < 5; i++) await trainer.step(batches[i % batches.length]!); // warm-up
  // Scoring's too, as bench/torch_ref.py warms up each scoring shape: the first pass would otherwise
  // carry the scoring buffers' allocation and the path's first compilation (~4 ms, 2% of a pass).
  for (let i = 0; i < 5; i++) await predict(bundle, batches[i % batches.length]!);
  const trainRates: number[] = [];
  const scoreRates: number[] = [];
  const trainCpu: number[] = [];
  const scoreCpu: number[] = [];
  // Each pass's share of the CPU taken by threads other than the main one (Linux only).
  const trainOthers: number[] = [];
  const scoreOthers: number[] = [];
  const cpuSeconds = (since: NodeJS.CpuUsage) => {
    const d = process.cpuUsage(since);
    return (d.user + d.system) / 1e6;
  };
  let peak = process.memoryUsage().rss;
  for (let r = 0; r < Number(args.repeats); r++) {
    let t0 = performance.now();
    let c0 = process.cpuUsage();
    let th = threadCpu();
    for (let i = 0; i < steps; i++) await trainer.step(batches[i % batches.length]!);
    trainRates.push((steps * BATCH) / ((performance.now() - t0) / 1000));
    trainCpu.push((steps * BATCH) / cpuSeconds(c0));
    const trainShare = othersShare(th, threadCpu());
    if (trainShare !== null) trainOthers.push(trainShare);
    peak = Math.max(peak, process.memoryUsage().rss);
    t0 = performance.now();
    c0 = process.cpuUsage();
    th = threadCpu();
    for (let i = 0; i < steps; i++) await predict(bundle, batches[i % batches.length]!);
    scoreRates.push((steps * BATCH) / ((performance.now() - t0) / 1000));
    scoreCpu.push((steps * BATCH) / cpuSeconds(c0));
    const scoreShare = othersShare(th, threadCpu());
    if (scoreShare !== null) scoreOthers.push(scoreShare);
    peak = Math.max(peak, process.memoryUsage().rss);
  }
  const fmt = (x: number) => Math.round(x).toLocaleString('en-US');
  console.log(`backend: ${backend}; model: resflow, ${FIELDS} fields x vocab ${VOCAB} x dim 16, towers 256-128, 2 tasks, batch ${BATCH}`);
  console.log(`train samples/s: median ${fmt(median(trainRates))} (runs: ${trainRates.map(fmt).join(', ')})`);
  console.log(`score samples/s: median ${fmt(median(scoreRates))} (runs: ${scoreRates.map(fmt).join(', ')})`);
  console.log(`train samples per CPU-second: median ${fmt(median(trainCpu))}; score samples per CPU-second: median ${fmt(median(scoreCpu))}`);
  if (trainOthers.length > 0 && scoreOthers.length > 0) {
    const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
    const tail = args.threads === '1' ? " (V8's compiler and garbage collector; on 1 thread all the rest is the main thread's)" : " (the kernels' worker threads, V8's compiler and garbage collector)";
    console.log(`CPU of threads besides the main one: training median ${pct(median(trainOthers))} (passes: ${trainOthers.map(pct).join(', ')}), scoring ${pct(median(scoreOthers))}${tail}`);
  }
  const flops = denseFlopsPerSample(bundle.params.variables);
  console.log(`dense FLOPs per sample: score ${flops.score}, train ${flops.train}`);
  console.log(`peak RSS: ${(Math.max(peak, process.resourceUsage().maxRSS * 1024) / 2 ** 20).toFixed(0)} MiB; tfjs tensors alive: ${tf.memory().numTensors}`);
}

await main();
