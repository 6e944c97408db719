/**
 * Memory at scale (README.md, "Scale"): training throughput with RSS sampled along the way, and streaming
 * evaluation over synthetic rows generated as a stream (never held whole), each case in its own
 * process so its peak RSS (VmHWM) is its own.
 *
 *   npm run bench:scale [-- --rows 1M,10M,50M --rows-per-request 25 --train-steps 2000 --gauc-group request|user]
 *   npm run bench:scale -- --only keys        # 20M requests of 2 rows: more distinct request keys than a Map holds
 *   npm run bench:scale -- --only eval --rows 50M
 *
 * `npm run bench:scale` runs this file; the embedding tables at 10k / 1M / 10M rows with lazily
 * allocated optimizer state are `npm run bench:scale-tables` (bench/scale-tables.ts), a script of their
 * own so that each takes its own flags.
 *
 * Evaluation: per chunk of 65,536 rows, raw request and user keys (sparse 52-bit integers) are mapped
 * to dense ids by data/encode.ts's KeyIndex (the typed-array key table), two tasks' scores and labels,
 * an exposure mask, the fused score, WR@K weights, ASH targets and the online truth go to
 * metrics/stream.ts's StreamingEvaluator with every metric (auc, gauc, logloss, recall, wrecall, ash,
 * online) at K = 16, 32, 48. Model scoring is not part of it (bench:train measures it; it streams).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, mkdtempSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Rng } from '../src/base/rng.js';
import { KeyIndex } from '../src/data/encode.js';
import { fuseScores } from '../src/metrics/fusion.js';
import { itemWeights } from '../src/metrics/ranking.js';
import { StreamingEvaluator } from '../src/metrics/stream.js';

const { values: args } = parseArgs({
  options: {
    rows: { type: 'string', default: '1M,10M,50M' },
    'rows-per-request': { type: 'string', default: '25' },
    'train-steps': { type: 'string', default: '2000' },
    'gauc-group': { type: 'string', default: 'request' },
    only: { type: 'string' },
    child: { type: 'string' },
  },
});

const MiB = 2 ** 20;
const CHUNK = 65_536;
const KS = [16, 32, 48];

function parseCount(s: string): number {
  const m = /^(\d+(?:\.\d+)?)([kKmM]?)$/.exec(s.trim());
  if (!m) throw new Error(`not a row count: ${s}`);
  return Math.round(Number(m[1]) * (m[2]!.toLowerCase() === 'm' ? 1e6 : m[2]!.toLowerCase() === 'k' ? 1e3 : 1));
}

/** Peak and current resident memory of this process (Linux /proc/self/status), in bytes. */
function memory(): { peak: number; now: number } {
  const status = readFileSync('/proc/self/status', 'utf8');
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) * 1024;
  return { peak: kb('VmHWM'), now: kb('VmRSS') };
}

/** Evaluation over `rows` synthetic rows in requests of `perRequest` rows, generated chunk by chunk. */
function evalCase(rows: number, perRequest: number, gaucGroup: 'request' | 'user'): void {
  const rng = new Rng(7);
  const requests = new KeyIndex();
  const users = new KeyIndex();
  const numUsers = Math.max(1, Math.floor(rows / perRequest / 4));
  const ev = new StreamingEvaluator({ split: 'bench', metrics: ['auc', 'gauc', 'logloss', 'recall', 'wrecall', 'ash', 'online'], ks: KS, tasks: ['ctr', 'ctcvr'], gaucGroup }, rows);
  const started = performance.now();
  const cpu0 = process.cpuUsage();
  let userOfRequest = 0;
  for (let at = 0; at < rows; at += CHUNK) {
    const n = Math.min(CHUNK, rows - at);
    const req = new Int32Array(n);
    const usr = new Int32Array(n);
    const ctr = new Float32Array(n);
    const ctcvr = new Float32Array(n);
    const click = new Uint8Array(n);
    const buy = new Uint8Array(n);
    const allBuy = new Uint8Array(n);
    const exposed = new Uint8Array(n);
    const teacher = new Float32Array(n);
    const relCtr = new Float32Array(n);
    const relCvr = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const row = at + i;
      const r = Math.floor(row / perRequest);
      // sparse raw keys, as logs carry them: the key table maps them to dense ids
      if (row % perRequest === 0) userOfRequest = users.idOf(((r * 2654435761) % numUsers) * 1_000_003 + 17);
      req[i] = requests.idOf(r * 1_000_003 + 4_000_000_000_000);
      usr[i] = userOfRequest;
      const q = rng.next();
      ctr[i] = Math.fround(0.02 + 0.3 * q);
      ctcvr[i] = Math.fround(ctr[i]! * 0.1 * rng.next());
      click[i] = rng.next() < ctr[i]! ? 1 : 0;
      buy[i] = click[i] && rng.next() < 0.2 ? 1 : 0;
      allBuy[i] = buy[i] || rng.next() < 0.01 ? 1 : 0;
      exposed[i] = row % perRequest < perRequest / 3 ? 1 : 0;
      teacher[i] = Math.fround(ctcvr[i]! * (0.5 + rng.next()));
      relCtr[i] = Math.fround(q * 0.3);
      relCvr[i] = Math.fround(0.1 * rng.next());
    }
    const probs = { ctr, ctcvr };
    ev.push({
      probs,
      labels: { ctr: click, ctcvr: buy },
      masks: { ctr: exposed, ctcvr: undefined },
      fused: fuseScores(probs, 'additive', {}),
      requests: req,
      users: usr,
      itemWeights: itemWeights({ click, purchase: buy }, { click: 1, purchase: 4 }),
      ashTargets: allBuy,
      online: { teacherCtcvr: teacher, relevanceCtr: relCtr, relevanceCvr: relCvr, exposed },
    });
  }
  const streamed = performance.now();
  const records = ev.finish();
  const done = performance.now();
  const cpu = process.cpuUsage(cpu0);
  const mem = memory();
  const auc = records.find((r) => r.name === 'auc' && r.task === 'ctr')!.value;
  const recall = records.find((r) => r.name === 'recall' && r.task === 'ctr')!;
  console.log(
    `eval ${fmt(rows)} rows, ${fmt(requests.size)} requests (${perRequest}/request), ${fmt(users.size)} users, gAUC by ${gaucGroup}: ` +
      `${fmt(rows / ((done - started) / 1000))} rows/s wall, ${fmt(rows / ((cpu.user + cpu.system) / 1e6))} per CPU-second (${((streamed - started) / 1000).toFixed(1)}s streaming + ${((done - streamed) / 1000).toFixed(1)}s finishing), ` +
      `peak RSS ${(mem.peak / MiB).toFixed(0)} MiB; ${records.length} records (ctr AUC ${auc.toFixed(4)}, recall@${recall.k} over ${fmt(recall.n_requests!)} requests)`,
  );
}

/** Training: `steps` steps of the reference model on fresh random batches, RSS sampled every 10%. */
async function trainCase(steps: number): Promise<void> {
  const { setupBackend } = await import('../src/app/backend.js');
  const { silentReporter } = await import('../src/app/reporter.js');
  const { buildBundle } = await import('../src/models/bundle.js');
  const { Trainer } = await import('../src/train/trainer.js');
  const { RunFolder } = await import('../src/runs/folder.js');
  const { benchConfig, randomBatch } = await import('./reference-model.js');
  const BATCH = 1024;
  const config = benchConfig(BATCH);
  const backend = await setupBackend(config, silentReporter, 'wasm');
  const bundle = buildBundle(config);
  const trainer = new Trainer(bundle, RunFolder.create(mkdtempSync(path.join(tmpdir(), 'resflow-scale-')), config));
  const rng = new Rng(3);
  for (let i = 0; i < 20; i++) await trainer.step(randomBatch(rng, BATCH)); // warm-up
  const samples: number[] = [];
  const started = performance.now();
  const cpu0 = process.cpuUsage();
  for (let i = 1; i <= steps; i++) {
    await trainer.step(randomBatch(rng, BATCH)); // a fresh batch every step: the data is a stream
    if (i % Math.max(1, Math.floor(steps / 10)) === 0) samples.push(memory().now);
  }
  const secs = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const growth = samples[samples.length - 1]! - samples[0]!;
  console.log(
    `train ${fmt(steps)} steps x ${BATCH} (${fmt(steps * BATCH)} rows, ${backend}): ${fmt((steps * BATCH) / secs)} samples/s wall, ${fmt((steps * BATCH) / ((cpu.user + cpu.system) / 1e6))} per CPU-second; ` +
      `RSS every ${Math.floor(steps / 10)} steps: ${samples.map((b) => (b / MiB).toFixed(0)).join(', ')} MiB ` +
      `(${growth / MiB < 64 ? 'flat' : 'GROWING'}: ${(growth / MiB).toFixed(0)} MiB from the first sample to the last); peak ${(memory().peak / MiB).toFixed(0)} MiB`,
  );
}

function fmt(x: number): string {
  return Math.round(x).toLocaleString('en-US');
}

async function main(): Promise<void> {
  if (args.child) {
    const [kind, a, b] = args.child.split(':');
    if (kind === 'eval') evalCase(Number(a), Number(b), args['gauc-group'] === 'user' ? 'user' : 'request');
    else await trainCase(Number(a));
    return;
  }
  const self = fileURLToPath(import.meta.url);
  const run = (child: string): void => {
    const r = spawnSync(process.execPath, ['--max-old-space-size=4096', self, '--child', child, '--gauc-group', args['gauc-group']!], { stdio: 'inherit' });
    if (r.status !== 0) {
      console.log(`  ${child}: FAILED (exit ${r.status ?? r.signal})`);
      process.exitCode = 1;
    }
  };
  console.log(`load average: ${readFileSync('/proc/loadavg', 'utf8').trim()}`);
  const only = args.only;
  if (!only || only === 'train') run(`train:${parseCount(args['train-steps']!)}`);
  if (!only || only === 'eval') for (const rows of args.rows!.split(',').map(parseCount)) run(`eval:${rows}:${parseCount(args['rows-per-request']!)}`);
  // More distinct request keys than a JavaScript Map holds (16,777,216): 20M requests of 2 rows.
  if (!only || only === 'keys') run(`eval:${40_000_000}:2`);
  console.log(`load average: ${readFileSync('/proc/loadavg', 'utf8').trim()}`);
}

await main();
