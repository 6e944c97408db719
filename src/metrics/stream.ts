/**
 * Streaming evaluation: the records of `evaluateMetrics` (registry.ts) from rows given chunk by chunk,
 * with memory bounded by design (README.md, "Scale"; docs/domain.md, Metrics).
 *
 * A request's rows are contiguous (README.md, "Data contract"), so every per-request metric (Recall@K,
 * WR@K, ASH@K, online@K, gAUC by request) is computed block by block of whole requests as they stream
 * by: a chunk's last request is held back until the next chunk shows where it ends. A request id that
 * comes back after another request is a `NotContiguous` error (the caller may fall back to
 * `evaluateMetrics` on all rows). What is kept per row, in typed columns that grow by doubling (or are
 * sized once from `rowsHint`):
 * - AUC: per task, for each row in its sample space, the score (4 bytes as Float32, 8 as Float64) and
 *   the label (1 byte): 5 bytes per row and task;
 * - gAUC by user (eval.gauc_group: user; users are not contiguous): also the user id (4 bytes), 9 bytes
 *   per row and task in all;
 * - at the end, one task at a time, the sort (sortRowsByScore: 16 bytes per row of that task) and,
 *   for gAUC by user, the partition (8 bytes per row and 4 per user).
 * Nothing is an object or a Map entry per row. LogLoss and the supports are running sums.
 *
 * The records are identical (same bits, same fields in the same order) to `evaluateMetrics` on all rows
 * at once when request ids are numbered in order of first appearance, as data/encode.ts's KeyIndex
 * numbers them: groups are then visited in the same order and every sum is added in the same order.
 */
import { DataError } from '../base/errors.js';
import { IdBits } from '../data/key-table.js';
import { aucFromSorted, GaucAccumulator, LOGLOSS_EPS } from './classification.js';
import { OnlineAccumulator, type OnlineInputs } from './online.js';
import { partitionByGroup, rankWithinGroups, sortRowsByScore, TopKAccumulator, toMacroMicro, toRecall, type LabelArray, type ScoreArray } from './ranking.js';
import { checkLengths, checkSharedInputs, macroMicroRecords, resolveMetrics, type EvalInput, type MetricDefinition, type MetricRecord } from './registry.js';

/** What stays the same for a whole stream. */
export type StreamSetup = Pick<EvalInput, 'split' | 'metrics' | 'ks' | 'tasks' | 'gaucGroup'>;
/** One chunk of rows: EvalInput's per-row arrays. */
export type EvalChunk = Omit<EvalInput, keyof StreamSetup>;

/** A request's rows were not contiguous: `request` (its id) came back after other requests. */
export class NotContiguous extends DataError {
  constructor(readonly request: number) {
    super(`request #${request} appears again after other requests (its rows are not contiguous)`);
  }
}

/** A typed column that grows by doubling. */
class Column<T extends Float32Array | Float64Array | Uint8Array | Int32Array> {
  length = 0;
  constructor(
    public data: T,
    private readonly make: (n: number) => T,
  ) {}
  push(v: number): void {
    if (this.length === this.data.length) {
      const next = this.make(Math.max(1024, this.data.length * 2));
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = v;
  }
  view(): T {
    return this.data.subarray(0, this.length) as T;
  }
}

interface TaskState {
  scores: Column<Float32Array> | Column<Float64Array> | null;
  labels: Column<Uint8Array>;
  users: Column<Int32Array> | null;
  positives: number;
  requestsWithRows: number;
  loglossSum: number;
  loglossCount: number;
  gauc: GaucAccumulator;
  recall: TopKAccumulator;
}

const PER_TASK = ['auc', 'gauc', 'logloss', 'recall'];
const RANKED = ['recall', 'wrecall', 'ash', 'online'];

export class StreamingEvaluator {
  private readonly defs: MetricDefinition[];
  private readonly names: Set<string>;
  private readonly byUser: boolean;
  private readonly tasks: TaskState[];
  private readonly wrecall: TopKAccumulator;
  private readonly ash: TopKAccumulator;
  private readonly online: OnlineAccumulator;
  private carry: { chunk: EvalChunk; n: number } | null = null;
  private checked = false;
  private hasRequests = false;
  /** One bit per request id: requests already finished (to refuse one that comes back). */
  private readonly finished = new IdBits();
  private rows = 0;

  constructor(
    private readonly setup: StreamSetup,
    /** Expected number of rows: columns are sized once instead of grown. */
    private readonly rowsHint = 0,
  ) {
    this.defs = resolveMetrics(setup);
    this.names = new Set(this.defs.map((d) => d.name));
    this.byUser = (setup.gaucGroup ?? 'request') === 'user';
    this.tasks = setup.tasks.map(() => ({
      scores: null,
      labels: new Column(new Uint8Array(0), (n) => new Uint8Array(n)),
      users: null,
      positives: 0,
      requestsWithRows: 0,
      loglossSum: 0,
      loglossCount: 0,
      gauc: new GaucAccumulator(),
      recall: new TopKAccumulator(setup.ks, true),
    }));
    this.wrecall = new TopKAccumulator(setup.ks, false);
    this.ash = new TopKAccumulator(setup.ks, true);
    this.online = new OnlineAccumulator(setup.ks);
  }

  /** Rows pushed so far. */
  get rowCount(): number {
    return this.rows;
  }

  /** Adds a chunk of rows (every array the same length; the same inputs in every chunk). */
  push(chunk: EvalChunk): void {
    const input: EvalInput = { ...this.setup, ...chunk };
    const n = checkLengths(input);
    if (!this.checked) {
      checkSharedInputs(input, this.defs);
      if (this.defs.some((d) => PER_TASK.includes(d.name))) {
        for (const task of this.setup.tasks) {
          if (chunk.probs[task] === undefined) throw new DataError(`no predicted probabilities for task \`${task}\``);
          if (chunk.labels[task] === undefined) throw new DataError(`no labels for task \`${task}\``);
        }
      }
      this.hasRequests = chunk.requests !== undefined;
      this.checked = true;
    }
    this.rows += n;
    const all = this.carry ? concatChunks(this.carry.chunk, this.carry.n, chunk, n) : chunk;
    const total = (this.carry?.n ?? 0) + n;
    this.carry = null;
    const req = all.requests;
    if (!req || total === 0) return this.block(all, total);
    let end = total - 1;
    while (end > 0 && req[end - 1] === req[total - 1]) end--;
    if (end > 0) this.block(sliceChunk(all, 0, end, false), end);
    this.carry = { chunk: sliceChunk(all, end, total, true), n: total - end };
  }

  /** The records, in evaluateMetrics's order; the evaluator is spent afterwards. */
  finish(): MetricRecord[] {
    if (this.carry) this.block(this.carry.chunk, this.carry.n);
    this.carry = null;
    const { split } = this.setup;
    const out: MetricRecord[] = [];
    const support = (t: TaskState) => (this.hasRequests ? { n_requests: t.requestsWithRows, n_positives: t.positives } : { n_positives: t.positives });
    const aucs: number[] = [];
    const gaucs: { value: number; groupsUsed: number }[] = [];
    this.setup.tasks.forEach((_, k) => {
      const t = this.tasks[k]!;
      if (!this.names.has('auc') && !(this.names.has('gauc') && this.byUser)) return;
      const scores = t.scores ? t.scores.view() : new Float32Array(0);
      const labels = t.labels.view();
      const order = sortRowsByScore(scores);
      aucs[k] = aucFromSorted(order, scores, labels);
      if (t.users) {
        const g = new GaucAccumulator();
        g.add(partitionByGroup(order, t.users.view()), scores, labels);
        gaucs[k] = g.result();
      }
      t.scores = null; // the columns are not needed any more
      t.users = null;
    });
    for (const def of this.defs) {
      this.setup.tasks.forEach((task, k) => {
        const t = this.tasks[k]!;
        if (def.name === 'auc') out.push({ name: 'auc', task, split, value: aucs[k]!, ...support(t) });
        if (def.name === 'gauc') {
          const g = gaucs[k] ?? t.gauc.result();
          out.push({ name: 'gauc', task, split, value: g.value, n_requests: g.groupsUsed, n_positives: t.positives });
        }
        if (def.name === 'logloss') out.push({ name: 'logloss', task, split, value: t.loglossCount > 0 ? t.loglossSum / t.loglossCount : NaN, ...support(t) });
        if (def.name === 'recall') {
          const r = toRecall(t.recall.result());
          for (const { k: K, value } of r.perK) out.push({ name: 'recall', task, k: K, split, value, n_requests: r.requestsCounted, n_positives: r.positives });
        }
      });
      if (def.name === 'wrecall') out.push(...macroMicroRecords('wrecall', toMacroMicro(this.wrecall.result()), split));
      if (def.name === 'ash') out.push(...macroMicroRecords('ash', toMacroMicro(this.ash.result()), split));
      if (def.name === 'online') out.push(...this.online.result().map(({ k, value }) => ({ name: 'online', task: 'fused', k, split, value })));
    }
    return out;
  }

  /** Rows [0, n) of `b`: whole requests (or rows without requests). */
  private block(b: EvalChunk, n: number): void {
    const names = this.names;
    // Local group ids: one per run of equal request ids, in order.
    let groups: Int32Array | undefined;
    let G = 0;
    if (b.requests) {
      const req = b.requests;
      groups = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        if (i === 0 || req[i] !== req[i - 1]) {
          this.markFinished(req[i]!);
          G++;
        }
        groups[i] = G - 1;
      }
    }
    const perTask = this.defs.some((d) => d.name === 'auc' || d.name === 'gauc' || d.name === 'logloss');
    this.setup.tasks.forEach((task, k) => {
      if (!perTask && !names.has('recall')) return;
      const t = this.tasks[k]!;
      const probs = b.probs[task]!;
      const labels = b.labels[task]!;
      const mask = b.masks?.[task];
      if (perTask) this.taskRows(t, probs, labels, mask, b.users, groups, n);
      if (names.has('gauc') && !this.byUser) t.gauc.add(partitionByGroup(sortRowsByScore(probs, { mask }), groups!, G), probs, labels);
    });
    if (!this.defs.some((d) => RANKED.includes(d.name))) return;
    const ranked = rankWithinGroups(b.fused!, groups!, undefined, G);
    if (names.has('recall')) this.setup.tasks.forEach((task, k) => this.tasks[k]!.recall.add(ranked, b.labels[task]!));
    if (names.has('wrecall')) this.wrecall.add(ranked, b.itemWeights!);
    if (names.has('ash')) this.ash.add(ranked, b.ashTargets!);
    if (names.has('online')) this.online.add(ranked, b.online!);
  }

  /** A task's running sums and columns over the rows of one block. */
  private taskRows(t: TaskState, probs: ScoreArray, labels: LabelArray, mask: Uint8Array | undefined, users: Int32Array | undefined, groups: Int32Array | undefined, n: number): void {
    const keepScores = this.names.has('auc') || (this.names.has('gauc') && this.byUser);
    if (keepScores && !t.scores) {
      const cap = this.rowsHint;
      t.scores = probs instanceof Float64Array ? new Column(new Float64Array(cap), (m) => new Float64Array(m)) : new Column(new Float32Array(cap), (m) => new Float32Array(m));
      t.labels = new Column(new Uint8Array(cap), (m) => new Uint8Array(m));
      if (this.names.has('gauc') && this.byUser) {
        if (!users) throw new DataError('metric `gauc` needs user ids (data.columns.user) to group by user');
        t.users = new Column(new Int32Array(cap), (m) => new Int32Array(m));
      }
    }
    if (keepScores && probs instanceof Float64Array && t.scores!.data instanceof Float32Array) {
      const wide = new Column(Float64Array.from(t.scores!.data), (m) => new Float64Array(m));
      wide.length = t.scores!.length;
      t.scores = wide;
    }
    const lo = LOGLOSS_EPS;
    const hi = 1 - LOGLOSS_EPS;
    let lastGroup = -1;
    for (let i = 0; i < n; i++) {
      if (mask !== undefined && mask[i] === 0) continue;
      const y = labels[i]!;
      if (y > 0) t.positives++;
      if (groups && groups[i] !== lastGroup) (lastGroup = groups[i]!), t.requestsWithRows++;
      let p = probs[i]!;
      if (keepScores) {
        t.scores!.push(p);
        t.labels.push(y > 0 ? 1 : 0);
        t.users?.push(users![i]!);
      }
      p = p < lo ? lo : p > hi ? hi : p; // NaN stays NaN (as logloss in classification.ts)
      t.loglossSum -= y > 0 ? Math.log(p) : Math.log(1 - p);
      t.loglossCount++;
    }
  }

  /** Marks request `id` finished; NotContiguous when it already was. */
  private markFinished(id: number): void {
    if (this.finished.has(id)) throw new NotContiguous(id);
    this.finished.add(id);
  }
}

type RowArray = ScoreArray | LabelArray | Int32Array | Float64Array;

/** Rows [s, e) of every array of a chunk (views, or copies when `copy`). */
function sliceChunk(c: EvalChunk, s: number, e: number, copy: boolean): EvalChunk {
  const cut = <A extends RowArray | undefined>(a: A): A => (a === undefined ? a : ((copy ? a.slice(s, e) : a.subarray(s, e)) as A));
  return mapChunk(c, cut);
}

/** `a`'s first `na` rows then `b`'s `nb` rows. */
function concatChunks(a: EvalChunk, na: number, b: EvalChunk, nb: number): EvalChunk {
  const arrays: RowArray[] = [];
  mapChunk(b, (x) => (x !== undefined && arrays.push(x), x));
  let i = 0;
  return mapChunk(a, <A extends RowArray | undefined>(x: A): A => {
    if (x === undefined) return x;
    const y = arrays[i++]!;
    const Ctor = y.constructor as new (n: number) => RowArray;
    const out = new Ctor(na + nb);
    out.set(x.subarray(0, na));
    out.set(y, na);
    return out as A;
  });
}

/** A chunk with `f` applied to each of its per-row arrays, in a fixed order. */
function mapChunk(c: EvalChunk, f: <A extends RowArray | undefined>(a: A) => A): EvalChunk {
  const rec = <A extends RowArray>(r: Readonly<Record<string, A | undefined>> | undefined) =>
    r === undefined ? undefined : Object.fromEntries(Object.keys(r).sort().map((k) => [k, f(r[k])]));
  const online: OnlineInputs | undefined = c.online && {
    teacherCtcvr: f(c.online.teacherCtcvr),
    relevanceCtr: f(c.online.relevanceCtr),
    relevanceCvr: f(c.online.relevanceCvr),
    exposed: f(c.online.exposed),
  };
  return {
    probs: rec(c.probs) as EvalChunk['probs'],
    labels: rec(c.labels) as EvalChunk['labels'],
    masks: rec(c.masks),
    fused: f(c.fused),
    requests: f(c.requests),
    users: f(c.users),
    itemWeights: f(c.itemWeights),
    ashTargets: f(c.ashTargets),
    online,
  };
}
