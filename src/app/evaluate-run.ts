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
import type { ScoredBatch, ScoredSplit } from '../eval/score.js';
import type { PredictionExtras } from '../eval/predictions.js';
import { setupBackend } from './backend.js';
import { UsageError } from '../base/errors.js';
import { parseOverride } from '../config/load.js';
import type { ExperimentConfig } from '../config/experiment.js';
import { readMetrics } from '../runs/metrics-files.js';
import type { Reporter } from './reporter.js';

/** A run folder with its trained model loaded, ready to score. */
export interface LoadedRun {
  run: RunFolder;
  bundle: ModelBundle;
}

/**
 * Opens a run folder, starts the backend and loads the run's trained model. `evalSettings`: --set
 * overrides applied to the run's config, each of an eval.* key (anything else would need retraining).
 */
export async function loadTrainedRun(dir: string, reporter: Reporter, opts: { backend?: string; evalSettings?: readonly string[] } = {}): Promise<LoadedRun> {
  const overrides = [...(opts.evalSettings ?? [])];
  for (const spec of overrides) {
    const { path } = parseOverride(spec);
    if (path[0] !== 'eval' || path.length < 2) {
      throw new UsageError(`--set ${spec}: eval changes only eval.* settings (e.g. eval.ks, eval.label_weights.purchase, eval.ash_target, eval.gauc_group, eval.metrics); the others need retraining`);
    }
  }
  const run = RunFolder.open(dir);
  cleanLeftovers(run.dir);
  const config = run.config((file) => loadExperiment(file, { overrides }).config);
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
  // export reads the weights synchronously; on webgpu they are read back here first
  const { readTensors } = await import('../kernels/read-back.js');
  await readTensors(bundle.params.variables.values());
  return { run, bundle };
}

/**
 * What an eval variant changed against the run's own evaluation (README.md, "Evaluation variants"):
 * a re-fusion, eval.* settings, or both. Written into each of its records.
 */
export interface EvalVariant {
  /** The fusion used, every task's weight spelled out: `mode:task=w,...`. */
  fusion?: string;
  /** Each --set eval.* key with the value it resolved to. */
  settings?: Record<string, unknown>;
}

/** The variant of a re-fusion and --set eval.* overrides; undefined when there is neither. */
export function evalVariant(config: ExperimentConfig, fusion: Fusion | undefined, evalSettings: readonly string[] = []): EvalVariant | undefined {
  if (!fusion && evalSettings.length === 0) return undefined;
  const variant: EvalVariant = {};
  if (fusion) variant.fusion = `${fusion.mode}:${config.tasks.map((t) => `${t.name}=${fusion.weights[t.name] ?? 1}`).join(',')}`;
  if (evalSettings.length) {
    const settings: Record<string, unknown> = {};
    for (const spec of evalSettings) {
      const { path } = parseOverride(spec);
      let value: unknown = config;
      for (const key of path) value = (value as Record<string | number, unknown>)[key];
      settings[path.map((k, i) => (typeof k === 'number' ? `[${k}]` : `${i ? '.' : ''}${k}`)).join('')] = value;
    }
    variant.settings = settings;
  }
  return variant;
}

/**
 * A variant's split name: `<base>@fusion=<spec>@<setting>=<value>...`, settings without the `eval.`
 * prefix, and commas written as `;` so that the name can be given to `compare --split` (a comma
 * separates split names there): `eval@fusion=additive:ctr=1;ctcvr=2@ks=[5;20]`.
 */
export function variantSplit(base: string, variant: EvalVariant): string {
  const parts = [
    ...(variant.fusion ? [`fusion=${variant.fusion}`] : []),
    ...Object.entries(variant.settings ?? {}).map(([k, v]) => `${k.replace(/^eval\./, '')}=${JSON.stringify(v)}`),
  ];
  return [base, ...parts.map((p) => p.replace(/,/g, ';'))].join('@');
}

export interface EvaluateOptions {
  /** Split name recorded with the metrics. */
  split: string;
  /** Split name of the oracle's records; default `<split>-oracle`. */
  oracleSplit?: string;
  /** Set for an eval variant: recorded in every record written, and never written over other records. */
  variant?: EvalVariant;
  /** Files to score instead of the config's data.eval. */
  files?: string[];
  /** Re-fuse with these weights instead of the config's (no retraining). */
  fusion?: Fusion;
  /** Sweep fusion weights and report WR@K and ASH@K per setting (fusion-grid.csv). */
  fusionGrid?: number[];
  /** Write one row per input row here (.parquet or .csv). */
  savePredictions?: string;
  /** Input columns the predictions file also holds: user, truth, teacher, features, or column names (README.md, "Predictions"). */
  predictionsWith?: string[];
  /** A 95% percentile bootstrap interval over requests for each of the model's records (ci_low, ci_high). */
  bootstrap?: { resamples: number; seed: number };
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
  const { writeMetricTables, metricsMarkdown } = await import('../report/tables.js');
  const { split } = opts;
  const oracleSplit = opts.oracleSplit ?? `${split}-oracle`;
  if (opts.variant) checkVariantSplits(run, [split, oracleSplit], opts.variant);
  // the predictions file's columns are checked before anything is scored or written
  const predictions = opts.savePredictions ? await (await import('../eval/predictions.js')).planPredictions(opts.savePredictions, bundle.config, opts.files, opts.predictionsWith ?? []) : undefined;
  const config = bundle.config;
  const tag = (recs: MetricRecord[]): MetricRecord[] => (opts.variant ? recs.map((r) => ({ ...r, ...opts.variant })) : recs);
  // Metrics (and the predictions file, the fusion grid) as the batches stream by (README.md,
  // "Scale"), unless every row is needed afterwards (the bootstrap over requests) or the requests
  // are not contiguous: then all rows at once.
  const streamed = opts.bootstrap ? null : await evaluateStreaming({ run, bundle }, opts, reporter, predictions);
  let scored: ScoredSplit | undefined;
  let records: MetricRecord[];
  let oracleRecords: MetricRecord[];
  if (streamed) ({ records, oracleRecords } = streamed);
  else {
    const { scoreSplit } = await import('../eval/score.js');
    const { evalInput, oracleRecords: oracleOf } = await import('../eval/evaluate.js');
    const { evaluateMetrics } = await import('../metrics/registry.js');
    const progress = reporter.progress({ label: `scoring ${split}`, total: 0, unit: 'rows' });
    scored = await scoreSplit(bundle, 'eval', opts.files, async (done, total) => {
      progress.setTotal(total);
      progress.update(done);
      await opts.between?.();
    }).catch((err: unknown) => {
      progress.stop();
      throw err;
    });
    progress.stop(`scored ${scored.rows.length.toLocaleString('en-US')} rows in ${scored.seconds.toFixed(1)}s`);
    const started = Date.now();
    const input = evalInput(config, scored.probs, scored.rows, split, { fusion: opts.fusion });
    let own = evaluateMetrics(input);
    if (opts.bootstrap) {
      const { withRequestIntervals } = await import('../report/request-intervals.js');
      const t0 = Date.now();
      own = withRequestIntervals(input, own, opts.bootstrap);
      reporter.debug(`bootstrap over requests: ${opts.bootstrap.resamples} resamples (seed ${opts.bootstrap.seed}) in ${((Date.now() - t0) / 1000).toFixed(2)}s`);
    }
    records = tag(own);
    oracleRecords = tag(oracleOf(config, scored.rows, oracleSplit, opts.fusion));
    reporter.debug(`metrics over ${scored.rows.length} rows in ${((Date.now() - started) / 1000).toFixed(2)}s`);
  }
  writeMetricTables(run, split, records, oracleRecords);
  reporter.info(metricsMarkdown([...records, ...oracleRecords]));
  const result: EvaluateResult = { records, oracleRecords };
  if (opts.savePredictions) {
    if (streamed) result.predictions = streamed.predictions!;
    else {
      const { savePredictions } = await import('../eval/predictions.js');
      result.predictions = await savePredictions(opts.savePredictions, bundle.taskNames, scored!, opts.fusion ?? config.fusion, predictions);
    }
    reporter.info(`wrote ${result.predictions.toLocaleString('en-US')} predictions to ${opts.savePredictions}`);
  }
  if (opts.fusionGrid) {
    const { fusionGrid, fusionGridTable } = await import('../eval/fusion-grid.js');
    const rows = streamed ? streamed.fusionGrid! : fusionGrid(config, scored!, split, opts.fusionGrid);
    writeFusionGrid(run.dir, rows);
    reporter.out(`fusion grid on ${split} (${rows.length} settings; all columns in ${runPath(run.dir, 'fusionGrid')}):`);
    for (const line of fusionGridTable(rows)) reporter.out(line);
    result.fusionGrid = rows;
  }
  return result;
}

/**
 * The metric records of evaluateRun computed while the batches stream by (eval/stream-eval.ts), tagged
 * like evaluateRun's, and the predictions file written from the same batches when asked for; null
 * when the split's requests are not contiguous or it has no rows (the caller then evaluates all rows
 * at once, which gives the same records and the same file; a file begun here is removed, write.ts).
 */
async function evaluateStreaming(
  { bundle }: LoadedRun,
  opts: EvaluateOptions,
  reporter: Reporter,
  predictions: PredictionExtras | undefined,
): Promise<{ records: MetricRecord[]; oracleRecords: MetricRecord[]; predictions?: number; fusionGrid?: FusionGridRow[] } | null> {
  const { openScoring } = await import('../eval/score.js');
  const { RowsEvaluator, OracleEvaluator } = await import('../eval/stream-eval.js');
  const { FusionGridEvaluator } = await import('../eval/fusion-grid.js');
  const { NotContiguous } = await import('../metrics/stream.js');
  const config = bundle.config;
  const oracleSplit = opts.oracleSplit ?? `${opts.split}-oracle`;
  const model = new RowsEvaluator(config, opts.split, { fusion: opts.fusion });
  const oracle = new OracleEvaluator(config, oracleSplit, opts.fusion);
  const grid = opts.fusionGrid ? new FusionGridEvaluator(config, opts.split, opts.fusionGrid) : null;
  const progress = reporter.progress({ label: `scoring ${opts.split}`, total: 0, unit: 'rows' });
  let rows = 0;
  let written: number | null = null;
  const started = Date.now();
  try {
    const stream = await openScoring(bundle, 'eval', opts.files);
    progress.setTotal(stream.total);
    model.expectRows(stream.total);
    oracle.expectRows(stream.total);
    async function* evaluated(): AsyncGenerator<ScoredBatch> {
      for await (const scored of stream.batches) {
        model.add(scored.probs, scored.batch);
        oracle.add(scored.batch);
        grid?.add(scored.probs, scored.batch);
        rows += scored.batch.length;
        yield scored;
        progress.update(rows);
        await opts.between?.();
      }
    }
    if (opts.savePredictions && predictions) {
      const { writePredictions } = await import('../eval/predictions.js');
      written = await writePredictions(opts.savePredictions, bundle.taskNames, opts.fusion ?? config.fusion, predictions, stream, evaluated());
    } else for await (const _ of evaluated());
  } catch (err) {
    progress.stop();
    if (!(err instanceof NotContiguous)) throw err;
    reporter.info(`the ${opts.split} rows are not grouped by request (a request's rows are not contiguous); evaluating all rows at once instead`);
    return null;
  }
  progress.stop(`scored ${rows.toLocaleString('en-US')} rows in ${((Date.now() - started) / 1000).toFixed(1)}s`);
  if (rows === 0) return null;
  const finished = Date.now();
  try {
    const tag = (recs: MetricRecord[]): MetricRecord[] => (opts.variant ? recs.map((r) => ({ ...r, ...opts.variant })) : recs);
    const out = {
      records: tag(model.finish()),
      oracleRecords: tag(oracle.finish()),
      ...(written === null ? {} : { predictions: written }),
      ...(grid ? { fusionGrid: grid.finish() } : {}),
    };
    reporter.debug(`metrics over ${rows} rows (streamed) in ${((Date.now() - finished) / 1000).toFixed(2)}s`);
    return out;
  } catch (err) {
    if (!(err instanceof NotContiguous)) throw err;
    reporter.info(`the ${opts.split} rows are not grouped by request (a request's rows are not contiguous); evaluating all rows at once instead`);
    return null;
  }
}

/**
 * A variant never replaces records written otherwise (the run's own evaluation, or another variant):
 * a split it would write may hold only records of the same variant.
 */
function checkVariantSplits(run: RunFolder, splits: readonly string[], variant: EvalVariant): void {
  const same = (r: EvalVariant) => r.fusion === variant.fusion && JSON.stringify(r.settings) === JSON.stringify(variant.settings);
  const clash = readMetrics(run.dir).find((r) => splits.includes(r.split) && !same(r));
  if (clash) {
    const what = clash.fusion || clash.settings ? 'another eval variant' : "the run's own evaluation";
    throw new UsageError(`--split ${clash.split}: ${runPath(run.dir, 'metricsJson')} holds records of ${what} there, which this variant would replace; name another split or leave out --split`);
  }
}
