/**
 * Metrics benchmark: 10M rows (200k requests x 50 candidates by default), seeded scores with many
 * ties, labels nested like a funnel. Prints the median of 3 runs for every metric (each call does
 * its own sort, as a caller would), the registry end to end, and peak RSS.
 *
 *   npm run build && node --max-old-space-size=8192 dist/bench/metrics.js [requests] [candidates]
 */
import { auc, gauc, logloss } from '../src/metrics/classification.js';
import { fuseScores } from '../src/metrics/fusion.js';
import { hitRateAtK, itemWeights, recallAtK, weightedRecallAtK } from '../src/metrics/ranking.js';
import { evaluateMetrics } from '../src/metrics/registry.js';
import { Rng } from '../src/base/rng.js';

/** Seeded uniform [0, 1) draws from the project's generator. */
function mulberry32(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.next();
}

const R = Number(process.argv[2] ?? 200_000);
const C = Number(process.argv[3] ?? 50);
const N = R * C;
const KS = [10, 50, 100];
const RUNS = 3;

function build() {
  const rnd = mulberry32(20240611);
  const requests = new Int32Array(N);
  const ctr = new Float32Array(N);
  const ctcvr = new Float32Array(N);
  const click = new Uint8Array(N);
  const purchase = new Uint8Array(N);
  const allPurchase = new Uint8Array(N);
  const exposure = new Uint8Array(N);
  for (let i = 0; i < N; i++) {
    requests[i] = Math.floor(i / C);
    // Rounded to 1e-4: ~10k distinct values, so ties are everywhere.
    const u = rnd();
    ctr[i] = Math.round(u * 1e4) / 1e4;
    ctcvr[i] = Math.round(u * rnd() * 0.2 * 1e4) / 1e4;
    exposure[i] = rnd() < 0.3 ? 1 : 0;
    click[i] = exposure[i] && rnd() < 0.1 + 0.4 * u ? 1 : 0;
    purchase[i] = click[i] && rnd() < 0.2 ? 1 : 0;
    allPurchase[i] = purchase[i] || rnd() < 0.01 * u ? 1 : 0;
  }
  return { requests, ctr, ctcvr, click, purchase, allPurchase, exposure };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function time<T>(label: string, f: () => T, show: (r: T) => string): void {
  const secs: number[] = [];
  let last: T | undefined;
  for (let r = 0; r < RUNS; r++) {
    const t0 = process.hrtime.bigint();
    last = f();
    secs.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  console.log(`${label.padEnd(34)} ${median(secs).toFixed(3).padStart(7)} s   (runs ${secs.map((s) => s.toFixed(2)).join(', ')})  ${show(last as T)}`);
}

const t0 = Date.now();
const d = build();
console.log(`built ${N.toLocaleString('en')} rows (${R} requests x ${C} candidates) in ${((Date.now() - t0) / 1000).toFixed(1)} s; median of ${RUNS} runs`);
const fused = fuseScores({ ctr: d.ctr, ctcvr: d.ctcvr }, 'additive', { ctr: 1, ctcvr: 2 });
const W = itemWeights({ purchase: d.purchase, click: d.click }, { purchase: 1, click: 0.1 });
const f3 = (x: number): string => x.toFixed(5);

time('fuseScores additive (2 tasks)', () => fuseScores({ ctr: d.ctr, ctcvr: d.ctcvr }, 'additive', { ctr: 1, ctcvr: 2 }), () => '');
time('fuseScores multiplicative', () => fuseScores({ ctr: d.ctr, ctcvr: d.ctcvr }, 'multiplicative', { ctr: 1, ctcvr: 2 }), () => '');
time('AUC (Float32, all rows)', () => auc(d.ctr, d.click), (v) => `auc=${f3(v)}`);
time('AUC (Float32, 30% mask)', () => auc(d.ctr, d.click, d.exposure), (v) => `auc=${f3(v)}`);
time('AUC (Float64 fused)', () => auc(fused, d.click), (v) => `auc=${f3(v)}`);
time('gAUC by request (Float32)', () => gauc(d.ctr, d.click, d.requests), (r) => `gauc=${f3(r.value)} used=${r.groupsUsed} skipped=${r.groupsSkipped}`);
time('LogLoss', () => logloss(d.ctr, d.click), (v) => `logloss=${f3(v)}`);
time('Recall@{10,50,100} (Float64 fused)', () => recallAtK(fused, d.click, d.requests, KS), (r) => r.perK.map((x) => `@${x.k}=${f3(x.value)}`).join(' ') + ` n=${r.requestsCounted}`);
time('WR@{10,50,100}', () => weightedRecallAtK(fused, W, d.requests, KS), (r) => r.perK.map((x) => `@${x.k}=${f3(x.macro)}/${f3(x.micro)}`).join(' '));
time('ASH@{10,50,100}', () => hitRateAtK(fused, d.allPurchase, d.requests, KS), (r) => r.perK.map((x) => `@${x.k}=${f3(x.macro)}/${f3(x.micro)}`).join(' '));

// Rows of a request scattered over the table (shuffled request ids): the group pass's worst case.
const shuffled = new Int32Array(R);
for (let i = 0; i < R; i++) shuffled[i] = i;
const rnd = mulberry32(7);
for (let i = R - 1; i > 0; i--) {
  const j = Math.floor(rnd() * (i + 1));
  const t = shuffled[i];
  shuffled[i] = shuffled[j];
  shuffled[j] = t;
}
const scattered = new Int32Array(N);
for (let i = 0; i < N; i++) scattered[i] = shuffled[(i * 7919) % R];
time('gAUC, scattered requests', () => gauc(d.ctr, d.click, scattered), (r) => `gauc=${f3(r.value)}`);
time('Recall@K, scattered requests', () => recallAtK(fused, d.click, scattered, KS), (r) => `@10=${f3(r.perK[0].value)}`);

time(
  'registry: all metrics, 2 tasks',
  () =>
    evaluateMetrics({
      split: 'bench',
      metrics: ['auc', 'gauc', 'logloss', 'recall', 'wrecall', 'ash'],
      ks: KS,
      tasks: ['ctr', 'ctcvr'],
      probs: { ctr: d.ctr, ctcvr: d.ctcvr },
      labels: { ctr: d.click, ctcvr: d.purchase },
      masks: { ctr: d.exposure, ctcvr: d.exposure },
      fused,
      requests: d.requests,
      itemWeights: W,
      ashTargets: d.allPurchase,
    }),
  (recs) => `${recs.length} records`,
);

const ru = process.resourceUsage();
console.log(`peak RSS ${(ru.maxRSS / 1024).toFixed(0)} MiB`);
