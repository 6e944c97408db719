/** `resflow train` and `resflow eval`. */
import path from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import type { ExperimentConfig } from '../config/experiment.js';
import { Interrupted, ResflowError, UsageError } from '../errors.js';
import { log } from '../log.js';
import { RunFolder } from '../runs/folder.js';
import { collect } from './options.js';

async function setupBackend(config: ExperimentConfig, override?: string): Promise<string> {
  const { initBackend } = await import('../train/backend.js');
  const requested = (override ?? config.runtime.backend) as 'auto' | 'tensorflow' | 'wasm' | 'cpu';
  const info = await initBackend(requested, { threads: config.runtime.threads });
  log.info(`backend: ${info.detail}`);
  return info.name;
}

/** Scores the run's eval split (or given files) and writes its metric tables. */
export async function evaluateRun(
  run: RunFolder,
  bundle: import('../train/bundle.js').ModelBundle,
  split: string,
  files?: string[],
): Promise<import('../metrics/registry.js').MetricRecord[]> {
  const { scoreSplit } = await import('../train/score.js');
  const { evaluateRows } = await import('../train/evaluate.js');
  const { writeMetricTables, metricsMarkdown } = await import('../report/tables.js');
  const { startProgress } = await import('../report/progress.js');
  const progress = startProgress({ label: `scoring ${split}`, total: 0, unit: 'rows' });
  const scored = await scoreSplit(bundle, 'eval', files, (done, total) => {
    progress.setTotal(total);
    progress.update(done);
  });
  progress.stop();
  const started = Date.now();
  const records = evaluateRows(bundle.config, scored.probs, scored.rows, split);
  log.debug(`metrics over ${scored.rows.length} rows in ${((Date.now() - started) / 1000).toFixed(2)}s`);
  writeMetricTables(run, split, records);
  log.info(metricsMarkdown(records));
  return records;
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
      const config = run ? run.config() : loadConfig(file!, { overrides: o.set }).config;
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
        const dense = bundle.params.trainable.reduce((s, v) => s + v.size, 0);
        const sparse = bundle.tables.tables.reduce((s, t) => s + t.rows * t.dim, 0);
        folder.update({ timings: { ...folder.info.timings, train_seconds: trainSeconds }, cost: { dense_parameters: dense, embedding_parameters: sparse } });
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
    .addHelpText('after', '\nExample:\n  resflow eval runs/quickstart/20261123-101500-1a2b3c4d --data datasets/tiny/valid.parquet --split valid')
    .action(async (dir: string, o: { data?: string[]; split: string; backend?: string }) => {
      const run = RunFolder.open(dir);
      const config = run.config();
      await setupBackend(config, o.backend);
      const { buildBundle } = await import('../train/bundle.js');
      const { loadModel } = await import('../runs/model-io.js');
      const bundle = buildBundle(config);
      loadModel(run.path('model'), bundle.params, bundle.tables);
      if (!o.data && !config.data.eval) throw new UsageError(`${run.dir}: the config has no data.eval; pass --data FILES`);
      await evaluateRun(run, bundle, o.split, o.data?.map((f) => path.resolve(f)));
      log.out(run.path('metrics.json'));
    });
}

export { ResflowError };
