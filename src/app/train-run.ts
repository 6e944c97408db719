/**
 * The train use case: a new run from a config, or an interrupted run carried on from its
 * checkpoint; then the model's serving cost and, when the config has an eval split, its evaluation.
 */
import { loadExperiment } from './load-experiment.js';
import type { ExperimentConfig } from '../config/experiment.js';
import { Interrupted, UsageError } from '../base/errors.js';
import { RunFolder } from '../runs/folder.js';
import { hasCheckpoint, verifyCheckpoint } from '../runs/checkpoint.js';
import type { HistoryRow } from '../train/callbacks.js';
import type { ModelBundle } from '../models/bundle.js';
import { setupBackend } from './backend.js';
import { evaluateRun, type EvaluateResult } from './evaluate-run.js';
import type { Reporter } from './reporter.js';
import { trainingProgress } from './training-progress.js';

/** A new run from a config (into `runsDir`), or the run folder `resume` carried on. */
export type TrainSource = { config: ExperimentConfig; runsDir: string } | { resume: string };

export interface TrainRunOptions {
  /** Overrides runtime.backend. */
  backend?: string;
  /** Polled after every step; true stops with a checkpoint (Interrupted). */
  stopRequested?: () => boolean;
  /** Called once the run folder is ready, before training starts (e.g. to handle a second Ctrl-C). */
  onRunStarted?: (run: RunFolder) => void;
}

export interface TrainRunResult {
  run: RunFolder;
  history: HistoryRow[];
  cost: ModelCost;
  evaluation?: EvaluateResult;
}

export interface ModelCost extends Record<string, number> {
  dense_parameters: number;
  embedding_parameters: number;
  scoring_us_per_1000: number;
}

/**
 * What the model costs at serving time: parameters, and microseconds to score 1,000 candidates with
 * the dense network (median of 20 batches on this backend; embedding lookup excluded).
 */
export async function modelCost(bundle: ModelBundle): Promise<ModelCost> {
  const { countParameters, scoringMicrosPer1000 } = await import('../models/cost.js');
  return {
    dense_parameters: countParameters(bundle.params),
    embedding_parameters: bundle.tables.tables.reduce((s, t) => s + t.rows * t.dim, 0),
    scoring_us_per_1000: Math.round(scoringMicrosPer1000(bundle)),
  };
}

export async function trainRun(source: TrainSource, opts: TrainRunOptions, reporter: Reporter): Promise<TrainRunResult> {
  const resumed = 'resume' in source ? RunFolder.open(source.resume) : undefined;
  const config = 'config' in source ? source.config : resumed!.config((file) => loadExperiment(file).config);
  // A damaged checkpoint is refused before anything in the run folder changes.
  if (resumed && hasCheckpoint(resumed.dir)) verifyCheckpoint(resumed.dir);
  // Check every configured split's files and columns before a run folder exists, so a typo in
  // the config does not leave a failed run behind.
  const { openSplit } = await import('../data/encode.js');
  for (const split of ['train', 'validation', 'eval'] as const) if (config.data[split]) await openSplit(config, split);
  const backend = await setupBackend(config, reporter, opts.backend);
  const tf = await import('@tensorflow/tfjs');
  const { buildBundle, disposeBundle } = await import('../models/bundle.js');
  const { Trainer } = await import('../train/trainer.js');
  const { runCallbacks } = await import('../train/run-callbacks.js');
  const run = 'runsDir' in source ? RunFolder.create(source.runsDir, config, { tfjs: tf.version.tfjs }) : resumed!;
  if (resumed) {
    if (resumed.info.status === 'completed') throw new UsageError(`${resumed.dir}: the run already completed; nothing to resume`);
    run.update({ status: 'running', resumed: [...(resumed.info.resumed ?? []), new Date().toISOString()] });
  }
  run.update({ backend });
  reporter.info(`run folder: ${run.dir}`);
  opts.onRunStarted?.(run);

  const started = Date.now();
  let bundle: ModelBundle | undefined;
  try {
    bundle = buildBundle(config);
    const trainer = new Trainer(bundle, run);
    const callbacks = [trainingProgress(config, reporter), ...runCallbacks(trainer, { stopRequested: opts.stopRequested ?? (() => false), log: (l) => reporter.info(l) })];
    const history = await trainer.fit({ resume: Boolean(resumed), callbacks });
    const trainSeconds = (Date.now() - started) / 1000;
    const cost = await modelCost(bundle);
    run.update({ timings: { ...run.info.timings, train_seconds: trainSeconds }, cost });
    const result: TrainRunResult = { run, history, cost };
    if (config.data.eval) {
      const t0 = Date.now();
      result.evaluation = await evaluateRun({ run, bundle }, { split: 'eval' }, reporter);
      run.update({ timings: { ...run.info.timings, eval_seconds: (Date.now() - t0) / 1000 } });
    }
    run.update({ status: 'completed', progress: run.info.progress });
    return result;
  } catch (err) {
    if (!(err instanceof Interrupted)) run.update({ status: 'failed', error: err instanceof Error ? err.message : String(err) });
    throw err;
  } finally {
    // The weights are in the run folder; free them so a process can train run after run (benchmarks, sweeps).
    if (bundle) disposeBundle(bundle);
  }
}
