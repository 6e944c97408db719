/**
 * The evaluate use case: score a trained run on a split or given files, write its metric tables
 * (with the oracle's beside them where the data has ground truth), and optionally save the
 * predictions and sweep fusion weights.
 */
import { loadExperiment } from './load-experiment.js';
import { DataError } from '../base/errors.js';
import type { ModelBundle } from '../models/bundle.js';
import { RunFolder } from '../runs/folder.js';
import { cleanLeftovers } from '../runs/leftovers.js';
import { writeFusionGrid } from '../runs/metrics-files.js';
import { runPath } from '../runs/layout.js';
import type { MetricRecord } from '../metrics/registry.js';
import type { Fusion } from '../eval/evaluate.js';
import type { FusionGridRow } from '../eval/fusion-grid.js';
import { setupBackend } from './backend.js';
import type { Reporter } from './reporter.js';

/** A run folder with its trained model loaded, ready to score. */
export interface LoadedRun {
  run: RunFolder;
  bundle: ModelBundle;
}

/** Opens a run folder, starts the backend and loads the run's trained model. */
export async function loadTrainedRun(dir: string, reporter: Reporter, opts: { backend?: string } = {}): Promise<LoadedRun> {
  const run = RunFolder.open(dir);
  cleanLeftovers(run.dir);
  const config = run.config((file) => loadExperiment(file).config);
  await setupBackend(config, reporter, opts.backend);
  const { buildBundle } = await import('../models/bundle.js');
  const { loadModel } = await import('../runs/model-io.js');
  const bundle = buildBundle(config);
  try {
    loadModel(run.modelDir(), bundle.params, bundle.tables);
  } catch (err) {
    // The model files matched run.json's record, so a shape that differs means config.yaml changed.
    if (err instanceof DataError && err.message.includes('the model built from the config')) {
      throw new DataError(`${err.message}; ${runPath(run.dir, 'config')} no longer describes the trained model (edited after training?)`);
    }
    throw err;
  }
  return { run, bundle };
}

export interface EvaluateOptions {
  /** Split name recorded with the metrics. */
  split: string;
  /** Files to score instead of the config's data.eval. */
  files?: string[];
  /** Re-fuse with these weights instead of the config's (no retraining). */
  fusion?: Fusion;
  /** Sweep fusion weights and report WR@K and ASH@K per setting (fusion-grid.csv). */
  fusionGrid?: number[];
  /** Write one row per input row here (.parquet or .csv). */
  savePredictions?: string;
  /** Called after each scored batch; may throw to stop (an interrupt during training's evaluation). */
  between?: () => Promise<void>;
}

export interface EvaluateResult {
  /** The model's records (the oracle's are written beside them, not returned). */
  records: MetricRecord[];
  oracleRecords: MetricRecord[];
  fusionGrid?: FusionGridRow[];
  /** Rows written to the predictions file. */
  predictions?: number;
}

/**
 * Scores a split (the config's eval files or given ones) and writes its metric tables; where the
 * data carries ground truth, the oracle's metrics go beside the model's as split `<split>-oracle`.
 */
export async function evaluateRun({ run, bundle }: LoadedRun, opts: EvaluateOptions, reporter: Reporter): Promise<EvaluateResult> {
  const { scoreSplit } = await import('../eval/score.js');
  const { evaluateRows, onlineReferences, oracleProbs } = await import('../eval/evaluate.js');
  const { writeMetricTables, metricsMarkdown } = await import('../report/tables.js');
  const { split } = opts;
  const progress = reporter.progress({ label: `scoring ${split}`, total: 0, unit: 'rows' });
  const scored = await scoreSplit(bundle, 'eval', opts.files, async (done, total) => {
    progress.setTotal(total);
    progress.update(done);
    await opts.between?.();
  }).catch((err: unknown) => {
    progress.stop();
    throw err;
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
  reporter.debug(`metrics over ${scored.rows.length} rows in ${((Date.now() - started) / 1000).toFixed(2)}s`);
  writeMetricTables(run, split, records, oracleRecords);
  reporter.info(metricsMarkdown([...records, ...oracleRecords]));
  const result: EvaluateResult = { records, oracleRecords };
  if (opts.savePredictions) {
    const { savePredictions } = await import('../eval/predictions.js');
    result.predictions = await savePredictions(opts.savePredictions, bundle.taskNames, scored, opts.fusion ?? config.fusion);
    reporter.info(`wrote ${result.predictions.toLocaleString('en-US')} predictions to ${opts.savePredictions}`);
  }
  if (opts.fusionGrid) {
    const { fusionGrid, fusionGridTable } = await import('../eval/fusion-grid.js');
    const rows = fusionGrid(config, scored, split, opts.fusionGrid);
    writeFusionGrid(run.dir, rows);
    reporter.out(`fusion grid on ${split} (${rows.length} settings; all columns in ${runPath(run.dir, 'fusionGrid')}):`);
    for (const line of fusionGridTable(rows)) reporter.out(line);
    result.fusionGrid = rows;
  }
  return result;
}
