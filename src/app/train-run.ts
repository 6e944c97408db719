/**
 * The train use case: a new run from a config, or an interrupted or stale run carried on from its
 * checkpoint; then the model's serving cost and, when the config has an eval split, its evaluation.
 * While it trains, run.json's heartbeat is rewritten every minute, and a requested stop (a signal)
 * is honoured after the current step, while reading ahead, validating or evaluating (README.md,
 * "Reliability").
 */
import { loadExperiment } from './load-experiment.js';
import type { ExperimentConfig } from '../config/experiment.js';
import { DataError, Interrupted, UsageError } from '../base/errors.js';
import { yieldToEvents } from '../base/yield.js';
import { RunFolder } from '../runs/folder.js';
import { hasCheckpoint, verifyCheckpoint } from '../runs/checkpoint.js';
import { cleanLeftovers } from '../runs/leftovers.js';
import { HEARTBEAT_MS, runState, staleReason } from '../runs/status.js';
import type { HistoryRow } from '../train/callbacks.js';
import type { ModelBundle } from '../models/bundle.js';
import { startBackend } from './backend.js';
import { evaluateRun, type EvaluateResult } from './evaluate-run.js';
import type { Reporter } from './reporter.js';
import { trainingProgress } from './training-progress.js';
import type { TensorBoardLogger } from '../train/tensorboard-logger.js';

/**
 * A new run from a config (into `runsDir`, or at exactly `runDir`, as a sweep names its trials), or
 * the run folder `resume` carried on.
 */
export type TrainSource = { config: ExperimentConfig; runsDir: string } | { config: ExperimentConfig; runDir: string } | { resume: string };

export interface TrainRunOptions {
  /** Overrides runtime.backend. */
  backend?: string;
  /** Polled after every step and between read, validation and evaluation batches; true stops with a checkpoint (Interrupted). */
  stopRequested?: () => boolean;
  /** false: no TensorBoard logs for this run, whatever runtime.tensorboard says. */
  tensorboard?: boolean;
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
  /** Features the model reads (fewer than the config's under a feature budget: model.type cold) and the width of its input. */
  features: number;
  input_width: number;
  scoring_us_per_1000: number;
}

/**
 * What the model costs at serving time: parameters, the features read and the input width, and microseconds to score 1,000 candidates with
 * the dense network (median of 20 batches on this backend; embedding lookup excluded).
 */
export async function modelCost(bundle: ModelBundle): Promise<ModelCost> {
  const { countParameters, scoringMicrosPer1000 } = await import('../models/cost.js');
  return {
    dense_parameters: countParameters(bundle.params),
    embedding_parameters: bundle.tables.tables.reduce((s, t) => s + t.rows * t.dim, 0),
    features: bundle.plan.sparse.length + bundle.plan.numeric.length,
    input_width: bundle.tables.inputDim,
    scoring_us_per_1000: Math.round(await scoringMicrosPer1000(bundle)),
  };
}

/**
 * Checks that a run can be resumed, before anything in it changes: not completed, not still
 * running, and with a checkpoint (a run killed before its first checkpoint has none: it must be
 * started again). UsageError (exit 2) otherwise.
 */
function checkResumable(run: RunFolder, reporter: Reporter): void {
  const state = runState(run.dir);
  const where = `${run.dir}: the run`;
  if (state.status === 'completed') throw new UsageError(`${where} already completed; nothing to resume`);
  if (state.status === 'running') {
    throw new UsageError(`${where} is still running (pid ${run.info.pid ?? '?'} on ${run.info.host ?? '?'}, last heartbeat ${run.info.heartbeat ?? run.info.updated}); stop it before resuming`);
  }
  if (!state.checkpoint) {
    throw new UsageError(`${where} is ${state.status} and has no checkpoint to resume from (checkpoint/state.json missing: it stopped before its first checkpoint); train it again from its config.yaml`);
  }
  if (state.status === 'stale') reporter.info(`resuming a stale run: ${staleReason(run.info)}`);
}

export async function trainRun(source: TrainSource, opts: TrainRunOptions, reporter: Reporter): Promise<TrainRunResult> {
  const resumed = 'resume' in source ? RunFolder.open(source.resume) : undefined;
  if (resumed) checkResumable(resumed, reporter);
  const config = 'config' in source ? source.config : resumed!.config((file) => loadExperiment(file).config);
  // A damaged checkpoint is refused before anything in the run folder changes.
  if (resumed && hasCheckpoint(resumed.dir)) verifyCheckpoint(resumed.dir);
  const stopRequested = opts.stopRequested ?? (() => false);
  const { parseCheckpointEvery } = await import('../train/run-callbacks.js');
  parseCheckpointEvery(config.train.checkpoint_every); // a bad value is a ConfigError before a run folder exists
  // Check every configured split's files and columns before a run folder exists, so a typo in
  // the config does not leave a failed run behind.
  const { openSplit } = await import('../data/encode.js');
  const { modelDescriptor } = await import('../models/registry.js');
  // the features the model reads (all but under a feature budget, model.type cold)
  const features = modelDescriptor(config.model.type)?.inputs(config.model) ?? null;
  for (const split of ['train', 'validation', 'eval'] as const) {
    if (!config.data[split]) continue;
    const { tables } = await openSplit(config, split, undefined, { features });
    // An empty training split would "complete" and save an untrained model.
    if (split === 'train' && tables.every((t) => t.rows === 0)) {
      throw new DataError(`data.train: ${tables.map((t) => t.file).join(', ')} ${tables.length > 1 ? 'hold' : 'holds'} no rows; there is nothing to train on`);
    }
  }
  const { detail: backend, adapter } = await startBackend(config, reporter, opts.backend);
  const tf = await import('@tensorflow/tfjs');
  const { buildBundle, disposeBundle } = await import('../models/bundle.js');
  const { Trainer } = await import('../train/trainer.js');
  const { runCallbacks } = await import('../train/run-callbacks.js');
  await yieldToEvents();
  if (stopRequested()) throw new Interrupted('interrupted before training started; no run folder was made or changed');
  const run =
    'runsDir' in source
      ? RunFolder.create(source.runsDir, config, { tfjs: tf.version.tfjs })
      : 'runDir' in source
        ? RunFolder.createAt(source.runDir, config, { tfjs: tf.version.tfjs })
        : resumed!;
  if (resumed) {
    // nothing else writes into a resumable run: whatever a killed writer left is removed
    for (const f of cleanLeftovers(run.dir, { anyPid: true })) reporter.debug(`removed a leftover of a killed write: ${f}`);
    run.claim({ status: 'running', resumed: [...(resumed.info.resumed ?? []), new Date().toISOString()] });
  }
  run.update({ backend, gpu_adapter: adapter }); // undefined (not written) off webgpu, also on a resume
  reporter.info(`run folder: ${run.dir}`);
  opts.onRunStarted?.(run);
  const heartbeat = setInterval(() => {
    try {
      if (run.info.status === 'running') run.saveInfo();
    } catch {
      // a failed heartbeat (disk full) is not a failure of the run; the next real write reports it
    }
  }, HEARTBEAT_MS).unref();

  const started = Date.now();
  let bundle: ModelBundle | undefined;
  let tensorboard: TensorBoardLogger | undefined;
  try {
    const buildStart = Date.now();
    bundle = buildBundle(config);
    const { describeTableMemory } = await import('../models/embeddings.js');
    const memory = bundle.tables.memory();
    const [head, ...perTable] = describeTableMemory(memory, bundle.tables.optimizer.type, bundle.tables.hugePageBytes);
    reporter.info(`${head}; built in ${((Date.now() - buildStart) / 1000).toFixed(1)} s`);
    for (const line of perTable) reporter.info(line);
    run.update({ embedding_memory: memory });
    const trainer = new Trainer(bundle, run);
    const callbacks = [trainingProgress(config, reporter), ...runCallbacks(trainer, { stopRequested, log: (l) => reporter.info(l) })];
    if (opts.tensorboard !== false && config.runtime.tensorboard !== false) {
      const { tensorBoardLogger } = await import('../train/tensorboard-logger.js');
      tensorboard = tensorBoardLogger(config, run.dir, bundle.taskNames);
      callbacks.push(tensorboard.callback);
    }
    const history = await trainer.fit({ resume: Boolean(resumed), callbacks });
    const trainSeconds = (Date.now() - started) / 1000;
    const cost = await modelCost(bundle);
    run.update({ timings: { ...run.info.timings, train_seconds: trainSeconds }, cost, embedding_memory: bundle.tables.memory() });
    const result: TrainRunResult = { run, history, cost };
    if (config.data.eval) {
      const t0 = Date.now();
      const { interruptRun } = await import('../train/run-callbacks.js');
      const between = async () => {
        await yieldToEvents();
        if (stopRequested()) throw await interruptRun(trainer, 'during the evaluation after training (training is done)');
      };
      result.evaluation = await evaluateRun({ run, bundle }, { split: 'eval', between }, reporter);
      tensorboard?.final(result.evaluation.records);
      run.update({ timings: { ...run.info.timings, eval_seconds: (Date.now() - t0) / 1000 } });
    }
    run.update({ status: 'completed', progress: run.info.progress });
    tensorboard?.close('success');
    return result;
  } catch (err) {
    try {
      // an interrupted run carries on with --resume: its HParams session stays open
      tensorboard?.close(err instanceof Interrupted ? null : 'failure');
    } catch {
      // the logs are secondary: the first error is the one to report
    }
    try {
      if (!(err instanceof Interrupted)) run.update({ status: 'failed', error: err instanceof Error ? err.message : String(err) });
    } catch {
      // recording the failure failed too (e.g. the disk is full): the first error is the one to report
    }
    throw err;
  } finally {
    clearInterval(heartbeat);
    // The weights are in the run folder; free them so a process can train run after run (benchmarks, sweeps).
    if (bundle) disposeBundle(bundle);
  }
}
