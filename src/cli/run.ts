/** `resflow train` and `resflow eval`: parse options, call the use cases of src/app, print. */
import path from 'node:path';
import type { Command } from 'commander';
import { loadExperiment } from '../app/load-experiment.js';
import { Interrupted, UsageError } from '../base/errors.js';
import { log } from '../base/log.js';
import type { RunFolder } from '../runs/folder.js';
import { runPath } from '../runs/layout.js';
import { trainRun } from '../app/train-run.js';
import { evaluateRun, evalVariant, loadTrainedRun, variantSplit } from '../app/evaluate-run.js';
import { collect } from './options.js';
import { DEFAULT_RESAMPLES } from '../report/statistics.js';
import { consoleReporter } from './reporter.js';

/** A whole number of at least `min` given to `flag`; UsageError (exit 2) naming the flag otherwise. */
function wholeNumber(flag: string, text: string, min: number): number {
  const v = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(v) || v < min) throw new UsageError(`${flag} ${text}: expected a whole number >= ${min}`);
  return v;
}

export const EXIT_CODE = { SIGINT: 130, SIGTERM: 143 } as const;
type StopSignal = keyof typeof EXIT_CODE;

/**
 * SIGINT and SIGTERM during `train` (README.md, "Reliability"): the first asks the run to stop
 * after the current step with a checkpoint (status `interrupted`); a second one waits for that
 * checkpoint; a third exits at once, marking the run `failed` unless its checkpoint is already
 * written.
 */
export class StopSignals {
  first: StopSignal | undefined;
  folder: RunFolder | undefined;
  private count = 0;
  private readonly handler = (signal: StopSignal) => this.onSignal(signal);

  constructor() {
    for (const s of Object.keys(EXIT_CODE)) process.on(s, this.handler);
  }

  private onSignal(signal: StopSignal): void {
    this.count++;
    this.first ??= signal;
    if (this.count === 1) {
      log.info(`\n${signal}: finishing the current step and saving a checkpoint (send it twice more to stop at once, without one)`);
    } else if (this.count === 2) {
      log.info(`${signal}: still saving the checkpoint; one more stops at once without it`);
    } else {
      const status = this.folder?.info.status;
      let outcome = '; no run folder was made';
      if (status === 'interrupted' || status === 'completed') outcome = ` (the run is ${status})`;
      else if (this.folder) {
        outcome = `; the run is marked failed: ${this.folder.dir}`;
        try {
          this.folder.update({ status: 'failed', error: `stopped at once by a third ${signal}, before a checkpoint was saved` });
        } catch {
          // exiting anyway; the run shows as stale once this process is gone
        }
      }
      process.stderr.write(`resflow: ${signal} three times: stopped at once${outcome}\n`);
      process.exit(EXIT_CODE[this.first]);
    }
  }

  dispose(): void {
    for (const s of Object.keys(EXIT_CODE)) process.off(s, this.handler);
  }
}

export function registerRunCommands(program: Command): void {
  program
    .command('train')
    .description('train a model from a config; writes a versioned run folder and prints its path last')
    .argument('[config]', 'YAML experiment config')
    .option('--set <path=value>', 'override a config key (repeatable)', collect, [])
    .option('--runs-dir <dir>', 'where run folders go', 'runs')
    .option('--backend <name>', 'auto, tensorflow, webgpu, wasm or cpu (overrides runtime.backend)')
    .option('--resume <run>', 'carry on an interrupted run from its checkpoint')
    .option('--no-tensorboard', 'write no TensorBoard logs (tb/) for this run (overrides runtime.tensorboard)')
    .addHelpText(
      'after',
      '\nExamples:\n  resflow train configs/quickstart.yaml\n  resflow train configs/quickstart.yaml --set model.residual=none --set runtime.seed=7\n  resflow train --resume runs/quickstart/20261123-101500-1a2b3c4d',
    )
    .action(async (file: string | undefined, o: { set: string[]; runsDir: string; backend?: string; resume?: string; tensorboard: boolean }) => {
      if (!file && !o.resume) throw new UsageError('train needs a config file (or --resume RUN)');
      if (file && o.resume) throw new UsageError('give either a config file or --resume RUN, not both');
      const source = o.resume ? { resume: o.resume } : { config: loadExperiment(file!, { overrides: o.set }).config, runsDir: o.runsDir };
      const signals = new StopSignals();
      try {
        const { run } = await trainRun(
          source,
          { backend: o.backend, tensorboard: o.tensorboard, stopRequested: () => signals.first !== undefined, onRunStarted: (run) => (signals.folder = run) },
          consoleReporter,
        );
        log.out(run.dir);
      } catch (err) {
        // the exit code says which signal stopped the run: 130 for SIGINT, 143 for SIGTERM
        if (err instanceof Interrupted && signals.first) throw new Interrupted(`${signals.first}: ${err.message}`, EXIT_CODE[signals.first]);
        throw err;
      } finally {
        // after a signal, keep handling them until the process exits (a third one still exits at once)
        if (!signals.first) signals.dispose();
      }
    });

  program
    .command('eval')
    .description('score a trained run on a data set and write its metric tables (no retraining)')
    .argument('<run>', 'run folder, e.g. runs/quickstart/<version>')
    .option('--data <files...>', 'data files to score (default: the config\'s data.eval)')
    .option('--split <name>', 'split name recorded with the metrics (default eval; with --fusion or --set, eval@<what changed>, beside the run\'s own eval records)')
    .option('--backend <name>', 'auto, tensorflow, webgpu, wasm or cpu')
    .option('--save-predictions <file>', 'write one row per input row (.parquet or .csv): request, row, labels, probabilities (float64: the values fused and the metrics were computed from), fused score')
    .option('--with <columns>', 'with --save-predictions: also these input columns, comma-separated: user, truth, teacher, features (the mapped ones) or column names')
    .option('--fusion <spec>', 're-fuse without retraining, e.g. additive:ctr=1,ctcvr=2 or multiplicative:ctr=1,ctcvr=0.5 (written as a variant)')
    .option('--set <path=value>', 'change an eval.* setting without retraining, e.g. eval.ks=[5,20] (repeatable; written as a variant)', collect, [])
    .option('--bootstrap [B]', `a 95% confidence interval per metric by resampling requests B times (default ${DEFAULT_RESAMPLES}), seeded; recorded as ci_low, ci_high`)
    .option('--bootstrap-seed <n>', 'seed of the bootstrap (default the run\'s runtime.seed)')
    .option('--fusion-grid [weights]', 'sweep every task\'s weight over these values (default 0,0.25,0.5,1,2,4) in both modes, each setting scaled so its largest weight is 1 and kept once; reports WR@K and ASH@K')
    .addHelpText(
      'after',
      '\nExamples:\n  resflow eval runs/quickstart/20261123-101500-1a2b3c4d --save-predictions preds.csv\n  resflow eval runs/quickstart/<version> --save-predictions preds.parquet --with user,truth,item_id\n  resflow eval runs/quickstart/<version> --fusion multiplicative:ctr=1,ctcvr=1\n  resflow eval runs/quickstart/<version> --set eval.ks=[5,20] --set eval.label_weights.purchase=2\n  resflow eval runs/quickstart/<version> --fusion-grid 0,0.5,1,2\n  resflow eval runs/quickstart/<version> --bootstrap 2000',
    )
    .action(async (dir: string, o: { data?: string[]; split?: string; backend?: string; savePredictions?: string; with?: string; fusion?: string; set: string[]; fusionGrid?: string | boolean; bootstrap?: string | boolean; bootstrapSeed?: string }) => {
      if (o.with !== undefined && !o.savePredictions) throw new UsageError('--with names columns of the predictions file: give --save-predictions FILE too');
      const withColumns = o.with?.split(',').map((c) => c.trim());
      if (withColumns?.some((c) => c === '')) throw new UsageError(`--with ${o.with}: expected column names or user, truth, teacher, features separated by commas`);
      const resamples = o.bootstrap === undefined ? undefined : o.bootstrap === true ? DEFAULT_RESAMPLES : wholeNumber('--bootstrap', String(o.bootstrap), 1);
      const bootstrapSeed = o.bootstrapSeed === undefined ? undefined : wholeNumber('--bootstrap-seed', o.bootstrapSeed, 0);
      if (bootstrapSeed !== undefined && resamples === undefined) throw new UsageError('--bootstrap-seed needs --bootstrap');
      const loaded = await loadTrainedRun(dir, consoleReporter, { backend: o.backend, evalSettings: o.set });
      const { run, bundle } = loaded;
      if (!o.data && !bundle.config.data.eval) throw new UsageError(`${run.dir}: the config has no data.eval; pass --data FILES`);
      const { parseFusionSpec } = await import('../metrics/fusion.js');
      const fusion = o.fusion ? parseFusionSpec(o.fusion) : undefined;
      if (fusion) for (const t of Object.keys(fusion.weights)) if (!bundle.taskNames.includes(t)) throw new UsageError(`--fusion ${o.fusion}: no task named \`${t}\`; tasks: ${bundle.taskNames.join(', ')}`);
      const grid = o.fusionGrid === undefined ? undefined : typeof o.fusionGrid === 'string' ? o.fusionGrid.split(',').map(Number) : [0, 0.25, 0.5, 1, 2, 4];
      if (grid?.some((v) => !Number.isFinite(v) || v < 0)) throw new UsageError(`--fusion-grid ${o.fusionGrid}: expected non-negative numbers separated by commas`);
      if (grid && !grid.some((v) => v > 0)) throw new UsageError(`--fusion-grid ${o.fusionGrid}: needs a value above 0 (all weights 0 rank nothing)`);
      const variant = evalVariant(bundle.config, fusion, o.set);
      const split = o.split ?? (variant ? variantSplit('eval', variant) : 'eval');
      const oracleSplit = o.split === undefined && variant ? variantSplit('eval-oracle', variant) : undefined;
      const bootstrap = resamples === undefined ? undefined : { resamples, seed: bootstrapSeed ?? bundle.config.runtime.seed };
      await evaluateRun(loaded, { split, oracleSplit, variant, files: o.data?.map((f) => path.resolve(f)), fusion, fusionGrid: grid, savePredictions: o.savePredictions, predictionsWith: withColumns, bootstrap }, consoleReporter);
      log.out(runPath(run.dir, 'metricsJson'));
    });
}
