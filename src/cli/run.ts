/** `resflow train` and `resflow eval`. */
import path from 'node:path';
import type { Command } from 'commander';
import { loadExperiment } from '../app/load-experiment.js';
import type { ExperimentConfig } from '../config/experiment.js';
import { Interrupted, ResflowError, UsageError } from '../base/errors.js';
import { log } from '../base/log.js';
import { RunFolder } from '../runs/folder.js';
import { collect } from './options.js';
import { STAGES } from '../config/experiment.js';
import { toCsv } from '../runs/folder.js';
import type { ModelBundle } from '../train/bundle.js';
import type { ScoredSplit } from '../train/score.js';
import { evaluateRows, onlineReferences, oracleProbs, type Fusion } from '../train/evaluate.js';
import type { MetricRecord } from '../metrics/registry.js';
import type { ColumnDef, ColumnValues } from '../data/write.js';

async function setupBackend(config: ExperimentConfig, override?: string): Promise<string> {
  const { initBackend } = await import('../train/backend.js');
  const requested = (override ?? config.runtime.backend) as 'auto' | 'tensorflow' | 'wasm' | 'cpu';
  const { describeSparseKernels, nativeEmbeddingsUnavailableReason } = await import('../models/sparse-kernels.js');
  const info = await initBackend(requested, { threads: config.runtime.threads });
  const detail = `${info.detail}; embeddings: ${describeSparseKernels()}`;
  log.info(`backend: ${detail}`);
  if (nativeEmbeddingsUnavailableReason()) log.debug(`native embedding kernels not used: ${nativeEmbeddingsUnavailableReason()}`);
  // The detail (e.g. whether the native matmul ran) goes into run.json: numbers differ across it.
  return detail;
}

export interface EvalRunOptions {
  files?: string[];
  /** Re-fuse with these weights instead of the config's (no retraining). */
  fusion?: Fusion;
  /** Sweep fusion weights and report WR@K and ASH@K per setting. */
  fusionGrid?: number[];
  savePredictions?: string;
}

/**
 * Scores a split (the config's eval files or given ones) and writes its metric tables; where the
 * data carries ground truth, the oracle's metrics go beside the model's as split `<split>-oracle`.
 */
export async function evaluateRun(run: RunFolder, bundle: ModelBundle, split: string, opts: EvalRunOptions = {}): Promise<MetricRecord[]> {
  const { scoreSplit } = await import('../train/score.js');
  const { writeMetricTables, metricsMarkdown } = await import('../report/tables.js');
  const { startProgress } = await import('../report/progress.js');
  const progress = startProgress({ label: `scoring ${split}`, total: 0, unit: 'rows' });
  const scored = await scoreSplit(bundle, 'eval', opts.files, (done, total) => {
    progress.setTotal(total);
    progress.update(done);
  });
  progress.stop(`scored ${scored.rows.length.toLocaleString('en-US')} rows in ${scored.seconds.toFixed(1)}s`);
  const config = bundle.config;
  const started = Date.now();
  const records = evaluateRows(config, scored.probs, scored.rows, split, { fusion: opts.fusion });
  const oracle = oracleProbs(config, scored.rows);
  const oracleRecords = [
    ...(oracle ? evaluateRows(config, oracle, scored.rows, `${split}-oracle`, { fusion: opts.fusion, metrics: config.eval.metrics.filter((m) => m !== 'online') }) : []),
    ...onlineReferences(config, scored.rows, `${split}-oracle`),
  ];
  log.debug(`metrics over ${scored.rows.length} rows in ${((Date.now() - started) / 1000).toFixed(2)}s`);
  writeMetricTables(run, split, records, oracleRecords);
  log.info(metricsMarkdown([...records, ...oracleRecords]));
  if (opts.savePredictions) await savePredictions(opts.savePredictions, bundle, scored, opts.fusion ?? config.fusion);
  if (opts.fusionGrid) fusionGrid(run, config, scored, split, opts.fusionGrid);
  return records;
}

/** One row per input row: request, row index, labels, stage, each task's probability, fused score. */
async function savePredictions(file: string, bundle: ModelBundle, scored: ScoredSplit, fusion: Fusion): Promise<void> {
  const { writeTable, formatFromPath } = await import('../data/write.js');
  const { fuseScores } = await import('../metrics/fusion.js');
  const format = formatFromPath(file);
  if (format === 'arrow') throw new UsageError(`--save-predictions ${file}: expected a .parquet or .csv file`);
  const rows = scored.rows;
  const n = rows.length;
  const columns: Record<string, ColumnValues> = { row: Float64Array.from({ length: n }, (_, i) => i) };
  const schema: ColumnDef[] = [{ name: 'row', type: 'int64' }];
  if (rows.request) {
    const keys = scored.requestKeys;
    const numeric = keys.every((k) => typeof k === 'number');
    columns.request = numeric ? Float64Array.from(rows.request, (r) => keys[r] as number) : Array.from(rows.request, (r) => String(keys[r]));
    schema.push({ name: 'request', type: numeric ? 'int64' : 'string' });
  }
  columns.stage = Array.from(rows.stage, (s) => STAGES[s]!);
  schema.push({ name: 'stage', type: 'string' });
  for (const [label, values] of rows.labels) {
    columns[label] = Int8Array.from(values);
    schema.push({ name: label, type: 'int8' });
  }
  for (const t of bundle.taskNames) {
    columns[`p_${t}`] = scored.probs[t]!;
    schema.push({ name: `p_${t}`, type: 'float32' });
  }
  columns.fused = fuseScores(scored.probs, fusion.mode, fusion.weights);
  schema.push({ name: 'fused', type: 'float64' });
  await writeTable(file, schema, [{ length: n, columns }]);
  log.info(`wrote ${n.toLocaleString('en-US')} predictions to ${file}`);
}

/** Sweeps fusion weights (first task fixed at 1) in both modes; writes fusion-grid.csv. */
function fusionGrid(run: RunFolder, config: ExperimentConfig, scored: ScoredSplit, split: string, values: number[]): void {
  const tasks = config.tasks.map((t) => t.name);
  const settings: Fusion[] = [];
  const rest = tasks.slice(1);
  const combos = rest.reduce<number[][]>((acc) => acc.flatMap((c) => values.map((v) => [...c, v])), [[]]);
  for (const mode of ['additive', 'multiplicative'] as const) {
    for (const combo of combos) settings.push({ mode, weights: Object.fromEntries([[tasks[0]!, 1], ...rest.map((t, i) => [t, combo[i]!])]) });
  }
  const rows: Record<string, string | number>[] = [];
  for (const f of settings) {
    const recs = evaluateRows(config, scored.probs, scored.rows, split, { fusion: f, metrics: ['wrecall', 'ash', 'online'] });
    const row: Record<string, string | number> = { mode: f.mode, weights: Object.entries(f.weights).map(([t, w]) => `${t}=${w}`).join(',') };
    for (const r of recs) row[`${r.name}@${r.k}${r.variant ? `_${r.variant}` : ''}`] = Number(r.value.toFixed(6));
    rows.push(row);
  }
  run.writeText('fusion-grid.csv', toCsv(rows));
  const keys = Object.keys(rows[0] ?? {}).filter((k) => k.endsWith('macro') || k.startsWith('online'));
  log.out(`fusion grid on ${split} (${settings.length} settings; all columns in ${run.path('fusion-grid.csv')}):`);
  log.out(['mode'.padEnd(15), 'weights'.padEnd(24), ...keys.map((k) => k.padStart(18))].join(' '));
  for (const r of rows) log.out([String(r.mode).padEnd(15), String(r.weights).padEnd(24), ...keys.map((k) => String(r[k]).padStart(18))].join(' '));
}

/**
 * What the model costs at serving time: parameters, and microseconds to score 1,000 candidates with
 * the dense network (median of 20 batches on this backend; embedding lookup excluded).
 */
async function modelCost(bundle: ModelBundle): Promise<Record<string, number>> {
  const { countParameters, scoringMicrosPer1000 } = await import('../models/cost.js');
  return {
    dense_parameters: countParameters(bundle.params),
    embedding_parameters: bundle.tables.tables.reduce((s, t) => s + t.rows * t.dim, 0),
    scoring_us_per_1000: Math.round(scoringMicrosPer1000(bundle)),
  };
}

export function registerRunCommands(program: Command): void {
  program
    .command('train')
    .description('train a model from a config; writes a versioned run folder and prints its path last')
    .argument('[config]', 'YAML experiment config')
    .option('--set <path=value>', 'override a config key (repeatable)', collect, [])
    .option('--runs-dir <dir>', 'where run folders go', 'runs')
    .option('--backend <name>', 'auto, tensorflow, wasm or cpu (overrides runtime.backend)')
    .option('--resume <run>', 'carry on an interrupted run from its checkpoint')
    .addHelpText(
      'after',
      '\nExamples:\n  resflow train configs/quickstart.yaml\n  resflow train configs/quickstart.yaml --set model.residual=none --set runtime.seed=7\n  resflow train --resume runs/quickstart/20261123-101500-1a2b3c4d',
    )
    .action(async (file: string | undefined, o: { set: string[]; runsDir: string; backend?: string; resume?: string }) => {
      if (!file && !o.resume) throw new UsageError('train needs a config file (or --resume RUN)');
      if (file && o.resume) throw new UsageError('give either a config file or --resume RUN, not both');
      const run = o.resume ? RunFolder.open(o.resume) : undefined;
      const config = run ? run.config() : loadExperiment(file!, { overrides: o.set }).config;
      // Check every configured split's files and columns before a run folder exists, so a typo in
      // the config does not leave a failed run behind.
      const { openSplit } = await import('../data/encode.js');
      for (const split of ['train', 'validation', 'eval'] as const) if (config.data[split]) await openSplit(config, split);
      const backend = await setupBackend(config, o.backend);
      const tf = await import('@tensorflow/tfjs');
      const { buildBundle } = await import('../train/bundle.js');
      const { Trainer } = await import('../train/trainer.js');
      const folder = run ?? RunFolder.create(o.runsDir, config, { tfjs: tf.version.tfjs });
      if (run) {
        if (run.info.status === 'completed') throw new UsageError(`${run.dir}: the run already completed; nothing to resume`);
        folder.update({ status: 'running', resumed: [...(run.info.resumed ?? []), new Date().toISOString()] });
      }
      folder.update({ backend });
      log.info(`run folder: ${folder.dir}`);

      let stop = false;
      const onSigint = () => {
        if (stop) {
          folder.update({ status: 'interrupted', error: 'interrupted twice; stopped without a checkpoint' });
          process.exit(130);
        }
        stop = true;
        log.info('\ninterrupt: finishing the current step and saving a checkpoint (Ctrl-C again to stop at once)');
      };
      process.on('SIGINT', onSigint);
      const started = Date.now();
      try {
        const bundle = buildBundle(config);
        const trainer = new Trainer(bundle, folder);
        await trainer.fit({ stopRequested: () => stop, resume: Boolean(run) });
        const trainSeconds = (Date.now() - started) / 1000;
        folder.update({ timings: { ...folder.info.timings, train_seconds: trainSeconds }, cost: await modelCost(bundle) });
        if (config.data.eval) {
          const t0 = Date.now();
          await evaluateRun(folder, bundle, 'eval');
          folder.update({ timings: { ...folder.info.timings, eval_seconds: (Date.now() - t0) / 1000 } });
        }
        folder.update({ status: 'completed', progress: folder.info.progress });
      } catch (err) {
        if (!(err instanceof Interrupted)) folder.update({ status: 'failed', error: err instanceof Error ? err.message : String(err) });
        throw err;
      } finally {
        process.off('SIGINT', onSigint);
      }
      log.out(folder.dir);
    });

  program
    .command('eval')
    .description('score a trained run on a data set and write its metric tables (no retraining)')
    .argument('<run>', 'run folder, e.g. runs/quickstart/<version>')
    .option('--data <files...>', 'data files to score (default: the config\'s data.eval)')
    .option('--split <name>', 'split name recorded with the metrics', 'eval')
    .option('--backend <name>', 'auto, tensorflow, wasm or cpu')
    .option('--save-predictions <file>', 'write one row per input row (.parquet or .csv): request, row, labels, probabilities, fused score')
    .option('--fusion <spec>', 're-fuse without retraining, e.g. additive:ctr=1,ctcvr=2 or multiplicative:ctr=1,ctcvr=0.5')
    .option('--fusion-grid [weights]', 'sweep fusion weights of the tasks after the first (default 0,0.25,0.5,1,2,4) in both modes; reports WR@K and ASH@K')
    .addHelpText(
      'after',
      '\nExamples:\n  resflow eval runs/quickstart/20261123-101500-1a2b3c4d --save-predictions preds.csv\n  resflow eval runs/quickstart/<version> --fusion multiplicative:ctr=1,ctcvr=1 --split eval-mult\n  resflow eval runs/quickstart/<version> --fusion-grid 0,0.5,1,2',
    )
    .action(async (dir: string, o: { data?: string[]; split: string; backend?: string; savePredictions?: string; fusion?: string; fusionGrid?: string | boolean }) => {
      const run = RunFolder.open(dir);
      const config = run.config();
      await setupBackend(config, o.backend);
      const { buildBundle } = await import('../train/bundle.js');
      const { loadModel } = await import('../runs/model-io.js');
      const bundle = buildBundle(config);
      loadModel(run.path('model'), bundle.params, bundle.tables);
      if (!o.data && !config.data.eval) throw new UsageError(`${run.dir}: the config has no data.eval; pass --data FILES`);
      const { parseFusionSpec } = await import('../metrics/fusion.js');
      const fusion = o.fusion ? parseFusionSpec(o.fusion) : undefined;
      if (fusion) for (const t of Object.keys(fusion.weights)) if (!bundle.taskNames.includes(t)) throw new UsageError(`--fusion ${o.fusion}: no task named \`${t}\`; tasks: ${bundle.taskNames.join(', ')}`);
      const grid = o.fusionGrid === undefined ? undefined : typeof o.fusionGrid === 'string' ? o.fusionGrid.split(',').map(Number) : [0, 0.25, 0.5, 1, 2, 4];
      if (grid?.some((v) => !Number.isFinite(v) || v < 0)) throw new UsageError(`--fusion-grid ${o.fusionGrid}: expected non-negative numbers separated by commas`);
      await evaluateRun(run, bundle, o.split, { files: o.data?.map((f) => path.resolve(f)), fusion, fusionGrid: grid, savePredictions: o.savePredictions });
      log.out(run.path('metrics.json'));
    });
}

