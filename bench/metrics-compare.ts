/**
 * AUC at scale, resflow vs scikit-learn (issue 7 part 3): 10M rows (200k requests x 50 candidates),
 * seeded scores rounded to 1e-4 (so ties everywhere), funnel-like labels. The scores and labels are
 * written to one binary file that both sides read; resflow's `auc` and sklearn's `roc_auc_score`
 * are each timed as the median of 3 calls on the loaded arrays (reading the file is not timed), the
 * two values must agree to 1e-9. Also times resflow's gAUC, WR@K and ASH@K on the same rows.
 *
 *   npm run bench:metrics-compare [-- --requests 200000 --candidates 50 --runs 3]
 *
 * scikit-learn runs as a reference should, at its best: without the OpenBLAS overrides this machine
 * sets for older builds (bench/py-deps.ts), with the BLAS numpy loaded printed (threadpoolctl, when
 * installed). roc_auc_score sorts and sums and calls no BLAS routine, so the kernel set should not
 * matter; the line is there to show it.
 *
 * Installs Debian's python3-sklearn and python3-threadpoolctl when /usr/bin/python3 cannot import them. Neither CI nor the
 * tests run it.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { auc, gauc } from '../src/metrics/classification.js';
import { hitRateAtK, itemWeights, weightedRecallAtK } from '../src/metrics/ranking.js';
import { describeOverridesRemoved, ensurePython, PY, referenceBaseEnv } from './py-deps.js';

const { values: args } = parseArgs({
  options: {
    requests: { type: 'string', default: '200000' },
    candidates: { type: 'string', default: '50' },
    runs: { type: 'string', default: '3' },
    keep: { type: 'string' },
  },
});
const R = Number(args.requests);
const C = Number(args.candidates);
const N = R * C;
const RUNS = Number(args.runs);
const KS = [10, 50];
const MAGIC = Buffer.from('RFAUC1\0\0', 'latin1');
const SKLEARN_PY = fileURLToPath(new URL('../../bench/metrics_sklearn.py', import.meta.url));

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Same generator as bench/metrics.ts: scores rounded to 1e-4 (~10k distinct values), nested labels. */
function build() {
  const rnd = mulberry32(20240611);
  const requests = new Int32Array(N);
  const ctr = new Float32Array(N);
  const click = new Uint8Array(N);
  const purchase = new Uint8Array(N);
  const allPurchase = new Uint8Array(N);
  for (let i = 0; i < N; i++) {
    requests[i] = Math.floor(i / C);
    const u = rnd();
    ctr[i] = Math.round(u * 1e4) / 1e4;
    const exposed = rnd() < 0.3;
    click[i] = exposed && rnd() < 0.1 + 0.4 * u ? 1 : 0;
    purchase[i] = click[i] && rnd() < 0.2 ? 1 : 0;
    allPurchase[i] = purchase[i] || rnd() < 0.01 * u ? 1 : 0;
  }
  return { requests, ctr, click, purchase, allPurchase };
}

function writeScoresLabels(file: string, scores: Float32Array, labels: Uint8Array): void {
  const head = Buffer.alloc(16);
  MAGIC.copy(head, 0);
  head.writeUInt32LE(scores.length, 8);
  writeFileSync(file, Buffer.concat([head, Buffer.from(scores.buffer, scores.byteOffset, scores.byteLength), Buffer.from(labels.buffer, labels.byteOffset, labels.byteLength)]));
}

function readScoresLabels(file: string): { scores: Float32Array; labels: Uint8Array } {
  const buf = readFileSync(file);
  if (!buf.subarray(0, 8).equals(MAGIC)) throw new Error(`${file}: not a metrics-compare file`);
  const n = buf.readUInt32LE(8);
  // Copy into fresh, aligned typed arrays (a Buffer's offset need not be 4-aligned).
  const scores = new Float32Array(n);
  new Uint8Array(scores.buffer).set(buf.subarray(16, 16 + 4 * n));
  const labels = Uint8Array.from(buf.subarray(16 + 4 * n, 16 + 5 * n));
  return { scores, labels };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function time<T>(f: () => T): { seconds: number; runs: number[]; value: T } {
  const runs: number[] = [];
  let value: T | undefined;
  for (let r = 0; r < RUNS; r++) {
    const t0 = process.hrtime.bigint();
    value = f();
    runs.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return { seconds: median(runs), runs, value: value as T };
}

function main(): void {
  ensurePython(['sklearn', 'numpy', 'threadpoolctl'], ['python3-sklearn', 'python3-threadpoolctl']);
  const dir = args.keep ?? mkdtempSync(path.join(tmpdir(), 'resflow-metrics-compare-'));
  const file = path.join(dir, 'scores-labels.bin');
  try {
    console.log(`load average at start: ${loadavg().map((x) => x.toFixed(2)).join(' ')} (the machine is shared; times are medians of ${RUNS} runs)`);
    let t0 = Date.now();
    const d = build();
    writeScoresLabels(file, d.ctr, d.click);
    const { scores, labels } = readScoresLabels(file);
    let positives = 0;
    for (const l of labels) positives += l;
    console.log(`${N.toLocaleString('en-US')} rows (${R.toLocaleString('en-US')} requests x ${C}), ${positives.toLocaleString('en-US')} positives, Float32 scores rounded to 1e-4 (ties), built + written + read back in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${file}`);

    const ours = time(() => auc(scores, labels));
    const secs = (x: { seconds: number; runs: number[] }) => `${x.seconds.toFixed(3)} s (runs ${x.runs.map((s) => s.toFixed(3)).join(', ')})`;
    console.log(`resflow auc:                   ${secs(ours)}  auc=${ours.value.toFixed(12)}`);

    t0 = Date.now();
    const out = execFileSync(PY, [SKLEARN_PY, file, '--runs', String(RUNS)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], env: referenceBaseEnv() });
    const sk = JSON.parse(out.trim().split('\n').pop()!) as { auc: number; seconds: number; runs: number[]; read_seconds: number; sklearn: string; numpy: string; blas: string | null };
    console.log(`sklearn ${sk.sklearn} roc_auc_score:  ${secs(sk)}  auc=${sk.auc.toFixed(12)}  (numpy ${sk.numpy}; file read ${sk.read_seconds.toFixed(2)} s, untimed)`);
    console.log(`  reference environment: ${describeOverridesRemoved()} (scikit-learn's process only); numpy's BLAS: ${sk.blas ?? 'threadpoolctl not installed'}`);
    const diff = Math.abs(ours.value - sk.auc);
    const agree = diff <= 1e-9;
    console.log(`AUC agreement: |resflow - sklearn| = ${diff.toExponential(2)} ${agree ? '<=' : '>'} 1e-9 ${agree ? 'OK' : 'MISMATCH'}`);

    const W = itemWeights({ purchase: d.purchase, click: d.click }, { purchase: 1, click: 0.1 });
    const g = time(() => gauc(scores, labels, d.requests));
    console.log(`resflow gAUC by request:       ${secs(g)}  gauc=${g.value.value.toFixed(6)} (groups used ${g.value.groupsUsed}, skipped ${g.value.groupsSkipped})`);
    const wr = time(() => weightedRecallAtK(scores, W, d.requests, KS));
    console.log(`resflow WR@{${KS}}:             ${secs(wr)}  ${wr.value.perK.map((x) => `@${x.k} macro ${x.macro.toFixed(5)}`).join(', ')}`);
    const ash = time(() => hitRateAtK(scores, d.allPurchase, d.requests, KS));
    console.log(`resflow ASH@{${KS}}:            ${secs(ash)}  ${ash.value.perK.map((x) => `@${x.k} macro ${x.macro.toFixed(5)}`).join(', ')}`);
    console.log(`peak RSS (node) ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB; load average now ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
    console.log(`auc_seconds resflow=${ours.seconds.toFixed(3)} sklearn=${sk.seconds.toFixed(3)}`);
    console.log(`auc_time_ratio=${(ours.seconds / sk.seconds).toFixed(3)} (resflow/sklearn seconds; resflow is ${(sk.seconds / ours.seconds).toFixed(1)}x ${ours.seconds < sk.seconds ? 'faster' : 'slower'})`);
    if (!agree) process.exitCode = 1;
  } finally {
    if (!args.keep) rmSync(dir, { recursive: true, force: true });
  }
}

main();
