/**
 * Evaluation as the scored batches stream by (README.md, "Scale"): the records of `evaluateRows` and
 * `oracleRecords` (evaluate.ts), bit for bit, without keeping the rows. Each batch goes to
 * metrics/stream.ts's StreamingEvaluator, whose memory per row is stated there (5 bytes per row and
 * task for AUC, 9 with gAUC by user, plus the sort at the end); requests must be contiguous, or
 * `NotContiguous` is thrown and the caller evaluates all rows at once instead.
 */
import type { ExperimentConfig } from '../config/experiment.js';
import { log } from '../base/log.js';
import type { EncodedBatch } from '../data/encode.js';
import { fuseScores } from '../metrics/fusion.js';
import { itemWeights } from '../metrics/ranking.js';
import type { MetricRecord } from '../metrics/registry.js';
import { StreamingEvaluator } from '../metrics/stream.js';
import { oracleProbs, taskLabelsAndMasks, type Fusion } from './evaluate.js';

interface Options {
  fusion?: Fusion;
  metrics?: readonly string[];
  tasks?: readonly string[];
  /** The ranking score of a batch, instead of fusing the task scores. */
  fused?: (rows: EncodedBatch) => Float64Array;
  rowsHint?: number;
}

/** evaluateRows (evaluate.ts), batch by batch: `add` each scored batch, then `finish`. */
export class RowsEvaluator {
  private ev: StreamingEvaluator | null = null;
  private metrics: string[] = [];

  constructor(
    private readonly config: ExperimentConfig,
    private readonly split: string,
    private readonly opts: Options = {},
  ) {
    this.rowsHint = opts.rowsHint ?? 0;
  }

  private rowsHint: number;

  /** Sizes the per-row columns once for `rows` rows (instead of growing them by doubling). */
  expectRows(rows: number): void {
    this.rowsHint = rows;
  }

  add(probs: Record<string, Float32Array>, rows: EncodedBatch): void {
    const { config, opts } = this;
    const fusion = opts.fusion ?? config.fusion;
    const tasks = opts.tasks ?? config.tasks.map((t) => t.name);
    if (!this.ev) {
      // evaluateRows's checks and warnings, once, from the first batch (every batch has the same columns)
      let metrics = [...(opts.metrics ?? config.eval.metrics)];
      if (metrics.includes('ash') && !rows.labels.get(config.eval.ash_target)) {
        log.warn(`ash needs the ${config.eval.ash_target} label (data.columns.labels); skipped`);
        metrics = metrics.filter((m) => m !== 'ash');
      }
      const missingWeights = Object.keys(config.eval.label_weights).filter((l) => !rows.labels.has(l as never));
      if (metrics.includes('wrecall') && missingWeights.length) {
        log.warn(`wrecall needs the labels ${missingWeights.join(', ')} (eval.label_weights); skipped`);
        metrics = metrics.filter((m) => m !== 'wrecall');
      }
      if (metrics.includes('online') && !onlineInputs(config, rows)) {
        log.debug('online (simulated outcome) needs teacher ctcvr and truth relevance_ctr/relevance_cvr columns; skipped');
        metrics = metrics.filter((m) => m !== 'online');
      }
      this.metrics = metrics;
      this.ev = new StreamingEvaluator({ split: this.split, metrics, ks: config.eval.ks, tasks, gaucGroup: config.eval.gauc_group }, this.rowsHint);
    }
    const { labels, masks } = taskLabelsAndMasks(config, rows, tasks);
    const labelsByName = Object.fromEntries([...rows.labels.entries()]);
    this.ev.push({
      probs,
      labels,
      masks,
      fused: opts.fused ? opts.fused(rows) : opts.tasks ? undefined : fuseScores(probs, fusion.mode, fusion.weights),
      requests: rows.request ?? undefined,
      users: rows.user ?? undefined,
      itemWeights: this.metrics.includes('wrecall') ? itemWeights(labelsByName, config.eval.label_weights) : undefined,
      ashTargets: rows.labels.get(config.eval.ash_target),
      online: onlineInputs(config, rows),
    });
  }

  finish(): MetricRecord[] {
    return this.ev ? this.ev.finish() : [];
  }
}

function onlineInputs(config: ExperimentConfig, rows: EncodedBatch) {
  const teacherCtcvr = rows.teacher.get('ctcvr');
  const relevanceCtr = rows.truth.get('relevance_ctr');
  const relevanceCvr = rows.truth.get('relevance_cvr');
  if (!teacherCtcvr || !relevanceCtr || !relevanceCvr || !config.data.columns.stage) return undefined;
  return { teacherCtcvr, relevanceCtr, relevanceCvr, exposed: rows.labels.get('exposure')! };
}

const PER_TASK: readonly string[] = ['auc', 'gauc', 'logloss'];

/** oracleRecords (evaluate.ts), batch by batch. */
export class OracleEvaluator {
  private parts: Array<{ ev: RowsEvaluator; map?: (r: MetricRecord) => MetricRecord }> | null = null;
  /** The logged funnel's purchases: running sums over requests (contiguous), in order. */
  private logged = { total: 0, requests: 0, current: -1, sum: 0, has: false, wanted: false };

  constructor(
    private readonly config: ExperimentConfig,
    private readonly split: string,
    private readonly fusion?: Fusion,
  ) {}

  private rowsHint = 0;

  expectRows(rows: number): void {
    this.rowsHint = rows;
  }

  add(rows: EncodedBatch): void {
    const { config, split } = this;
    const probs = oracleProbs(config, rows);
    if (!this.parts) {
      const tasks = Object.keys(probs);
      const wanted = config.eval.metrics.filter((m) => m !== 'online');
      this.parts = [];
      if (tasks.length === config.tasks.length) this.parts.push({ ev: new RowsEvaluator(config, split, { fusion: this.fusion, metrics: wanted, rowsHint: this.rowsHint }) });
      else {
        if (tasks.length) this.parts.push({ ev: new RowsEvaluator(config, split, { tasks, metrics: wanted.filter((m) => PER_TASK.includes(m)), rowsHint: this.rowsHint }) });
        const target = config.eval.ash_target;
        if (wanted.includes('ash') && rows.truth.get(target) && rows.request) {
          this.parts.push({ ev: new RowsEvaluator(config, split, { tasks: [], metrics: ['ash'], fused: (r) => Float64Array.from(r.truth.get(target)!) }) });
        }
      }
      const inputs = onlineInputs(config, rows);
      if (inputs && rows.request) {
        // onlineReferences's oracle: each request's pool ranked by relevance_ctr x relevance_cvr
        const value = (r: EncodedBatch) => {
          const i = onlineInputs(config, r)!;
          return Float64Array.from(i.relevanceCtr, (c, j) => c * i.relevanceCvr[j]!);
        };
        this.parts.push({ ev: new RowsEvaluator(config, split, { tasks: [], metrics: ['online'], fused: value }), map: (r) => ({ ...r, task: 'oracle' }) });
        this.logged.wanted = rows.truth.has('purchase');
      }
    }
    for (const p of this.parts) p.ev.add(probs, rows);
    if (this.logged.wanted) this.addLogged(rows);
  }

  private addLogged(rows: EncodedBatch): void {
    const L = this.logged;
    const exposed = rows.labels.get('exposure')!;
    const p = rows.truth.get('purchase')!;
    const req = rows.request!;
    for (let i = 0; i < rows.length; i++) {
      if (!exposed[i]) continue;
      if (req[i] !== L.current) {
        if (L.has) (L.total += L.sum), L.requests++;
        (L.current = req[i]!), (L.sum = 0), (L.has = true);
      }
      L.sum += p[i]!;
    }
  }

  finish(): MetricRecord[] {
    const out: MetricRecord[] = [];
    for (const p of this.parts ?? []) out.push(...(p.map ? p.ev.finish().map(p.map) : p.ev.finish()));
    const L = this.logged;
    if (!L.wanted) return out;
    if (L.has) (L.total += L.sum), L.requests++;
    return [...out, { name: 'online', task: 'logged', split: this.split, value: L.total / Math.max(L.requests, 1) }];
  }
}
