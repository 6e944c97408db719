/**
 * The tests and marks of a comparison (docs/domain.md, Comparing runs):
 *
 * - Two rows are compared on one metric by pairing their runs by seed (seeds present in both; runs
 *   sharing a seed averaged first): a paired t-test decides, a Wilcoxon signed-rank test (exact for
 *   n <= 20) and Cohen's d_z are reported beside it. Fewer than 2 pairs: untested.
 * - Main table: per column, the leader is tested against the runner-up. The p-values of one table
 *   are adjusted together (Holm–Bonferroni by default, `none` on request). The leader is marked
 *   `significant` only when its adjusted p < SIGNIFICANCE; otherwise leader and runner-up are
 *   `tied`; with no test possible the leader is `untested`.
 * - p-value table: every row against the reference, adjusted together the same way.
 */
import { cohenDz, holmAdjust, mean, pairedTTest, SIGNIFICANCE, wilcoxonSignedRank } from './statistics.js';

export type Correction = 'holm' | 'none';
export const CORRECTIONS: readonly Correction[] = ['holm', 'none'];
export type Mark = 'significant' | 'tied' | 'untested';

/** The one legend of every mark, as one line per mark. */
export function markLegend(correction: Correction): string[] {
  const adj = correction === 'holm' ? 'Holm-adjusted' : 'unadjusted';
  return [
    `* best, and better than the runner-up: paired t-test by seed, ${adj} p < ${SIGNIFICANCE}`,
    `= tied for best: the leader is not significantly better than the runner-up (${adj} p >= ${SIGNIFICANCE})`,
    `? best value, untested: fewer than 2 seeds shared with the runner-up`,
  ];
}

export const MARK_SYMBOL: Record<Mark, string> = { significant: '*', tied: '=', untested: '?' };

export interface PairTest {
  /** Number of seed pairs. */
  n: number;
  /** Mean of a - b. */
  meanDiff: number;
  t: number;
  /** Paired t-test, two-sided; NaN with fewer than 2 pairs. */
  p: number;
  /** p after the table's correction. */
  pAdjusted: number;
  /** Wilcoxon signed-rank two-sided p (exact for n <= 20); NaN when untestable. */
  wilcoxonP: number;
  /** Cohen's d_z of a - b. */
  dz: number;
}

/** Paired tests of values a against b (paired by position). pAdjusted is set later by `adjust`. */
export function pairTests(a: readonly number[], b: readonly number[]): PairTest {
  const t = pairedTTest(a, b);
  const w = a.length >= 2 ? wilcoxonSignedRank(a, b).p : NaN;
  return { n: t.n, meanDiff: t.meanDiff, t: t.t, p: t.p, pAdjusted: t.p, wilcoxonP: w, dz: cohenDz(a, b) };
}

/** Sets pAdjusted on every test of one table. */
export function adjust(tests: readonly PairTest[], correction: Correction): void {
  const adj = correction === 'holm' ? holmAdjust(tests.map((t) => t.p)) : tests.map((t) => t.p);
  tests.forEach((t, i) => (t.pAdjusted = adj[i]!));
}

/** Per seed, the mean of a row's values with that seed. */
export function bySeed(pairs: readonly { seed: number | null; value: number }[]): Map<number, number> {
  const acc = new Map<number, number[]>();
  for (const { seed, value } of pairs) {
    if (seed === null) continue;
    let l = acc.get(seed);
    if (!l) acc.set(seed, (l = []));
    l.push(value);
  }
  return new Map([...acc].map(([s, v]) => [s, mean(v)]));
}

/** Values of a and b for the seeds both have, in a's seed order. */
export function pairUp(a: Map<number, number>, b: Map<number, number>): { xs: number[]; ys: number[] } {
  const xs: number[] = [];
  const ys: number[] = [];
  for (const [seed, v] of a) {
    const w = b.get(seed);
    if (w !== undefined) (xs.push(v), ys.push(w));
  }
  return { xs, ys };
}

export interface LeaderTest<R> {
  leader: R;
  runnerUp: R;
  test: PairTest;
}

/**
 * Marks the leaders of each column. `cells(col)` lists the rows with a finite mean; `pair(a, b, col)`
 * tests row a against row b. Returns the leader tests (for reports) by column.
 */
export function markLeaders<C, R>(
  columns: readonly C[],
  cells: (col: C) => { row: R; mean: number; setMark(m: Mark): void }[],
  higherIsBetter: (col: C) => boolean,
  pair: (a: R, b: R, col: C) => PairTest,
  correction: Correction,
): Map<C, LeaderTest<R>> {
  const pending: { col: C; lead: ReturnType<typeof cells>[number]; runner: ReturnType<typeof cells>[number]; test: PairTest }[] = [];
  for (const col of columns) {
    const list = cells(col);
    if (list.length < 2) continue;
    const sign = higherIsBetter(col) ? -1 : 1;
    const sorted = [...list].sort((x, y) => sign * (x.mean - y.mean));
    const lead = sorted[0]!;
    const runner = sorted[1]!;
    if (lead.mean === runner.mean) {
      for (const c of sorted) if (c.mean === lead.mean) c.setMark('tied');
      continue;
    }
    const test = pair(lead.row, runner.row, col);
    if (!Number.isFinite(test.p)) {
      lead.setMark('untested');
      continue;
    }
    pending.push({ col, lead, runner, test });
  }
  adjust(
    pending.map((p) => p.test),
    correction,
  );
  const out = new Map<C, LeaderTest<R>>();
  for (const { col, lead, runner, test } of pending) {
    if (test.pAdjusted < SIGNIFICANCE) lead.setMark('significant');
    else (lead.setMark('tied'), runner.setMark('tied'));
    out.set(col, { leader: lead.row, runnerUp: runner.row, test });
  }
  return out;
}
