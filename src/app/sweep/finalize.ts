/**
 * `resflow sweep finalize DIR`: trials.csv / trials.json (every child: trial, group, parameters,
 * seed, status, selection metric), the final stage's choice once the search stage has ended (each
 * group's best trial by the mean selection metric over its seeds), and leaderboard.md: each
 * group's best trial with its eval mean ± std over seeds and a paired t-test (by seed) against the
 * best group (report/statistics.ts).
 */
import path from 'node:path';
import { METRIC_DECLARATIONS } from '../../config/metrics.js';
import type { LoadedSweep } from '../../config/sweep.js';
import { writeAtomic } from '../../runs/atomic.js';
import { toCsv } from '../../runs/csv.js';
import { writeJsonFile } from '../../runs/json-file.js';
import { mean, pairedTTest, sampleStd, SIGNIFICANCE } from '../../report/statistics.js';
import { expandSweep, type Child, type Expansion, type FinalChoice } from './expand.js';
import { readFinalChoice, sweepPath, writeFinalChoice } from './folder.js';
import { childState, metricOf, openSweep, type ChildState } from './trial.js';

export interface ChildRow {
  index: number;
  trial: number;
  stage: Child['stage'];
  group: string;
  parameters: Record<string, unknown>;
  seed: number;
  status: string;
  attempts: number;
  run: string;
  /** The selection metric on the selection split (validation). */
  selection: number | null;
  /** The same metric on the reported split (eval). */
  eval: number | null;
}

export interface FinalizeResult {
  rows: ChildRow[];
  expansion: Expansion;
  /** Children still to run (a stage not finished, or the final stage just chosen). */
  todo: number[];
  leaderboard: string;
  /** Whether every child ended (completed, or failed with no attempts left). */
  done: boolean;
  retries: number;
}

/** Every child's row of trials.csv (status, attempts, selection and eval metric), read from its run folder. */
export function childRows(dir: string, sweep: LoadedSweep, expansion: Expansion): { rows: ChildRow[]; states: ChildState[] } {
  const states = expansion.children.map((c) => childState(dir, c, sweep.spec.retries));
  const rows = expansion.children.map((c, i) => {
    const runDir = path.join(dir, c.name);
    const done = states[i]!.status === 'completed';
    return {
      index: c.index,
      trial: c.trial,
      stage: c.stage,
      group: c.group,
      parameters: c.params,
      seed: c.seed,
      status: states[i]!.status,
      attempts: states[i]!.attempts,
      run: c.name,
      selection: done ? (metricOf(sweep, runDir, sweep.spec.select.split, c) ?? null) : null,
      eval: done ? (metricOf(sweep, runDir, 'eval', c) ?? null) : null,
    };
  });
  return { rows, states };
}

/** Each group's best trial by mean selection metric over its completed seeds (ties: the lower trial number). */
export function bestTrials(sweep: LoadedSweep, rows: readonly ChildRow[]): FinalChoice {
  const higher = METRIC_DECLARATIONS[sweep.spec.select.metric].direction === 'higher';
  const byTrial = new Map<number, { group: string; values: number[] }>();
  for (const r of rows) {
    if (r.stage !== 'search' || r.selection === null) continue;
    const t = byTrial.get(r.trial) ?? { group: r.group, values: [] };
    t.values.push(r.selection);
    byTrial.set(r.trial, t);
  }
  const best = new Map<string, { trial: number; score: number }>();
  for (const [trial, t] of [...byTrial].sort((a, b) => a[0] - b[0])) {
    const score = mean(t.values);
    const cur = best.get(t.group);
    if (!cur || (higher ? score > cur.score : score < cur.score)) best.set(t.group, { trial, score });
  }
  return [...best].map(([group, b]) => ({ group, trial: b.trial }));
}

export function finalizeSweep(dir: string): FinalizeResult {
  const sweepDir = path.resolve(dir);
  let { sweep, expansion } = openSweep(sweepDir);
  let { rows, states } = childRows(sweepDir, sweep, expansion);
  const searchEnded = states.every((s, i) => expansion.children[i]!.stage !== 'search' || !s.todo);
  if (sweep.spec.final && searchEnded) {
    const chosen = bestTrials(sweep, rows);
    const previous = readFinalChoice(sweepDir);
    if (JSON.stringify(previous) !== JSON.stringify(chosen)) {
      writeFinalChoice(sweepDir, chosen);
      expansion = expandSweep(sweep, chosen);
      ({ rows, states } = childRows(sweepDir, sweep, expansion));
    }
  }
  const todo = expansion.children.filter((_, i) => states[i]!.todo).map((c) => c.index);
  writeJsonFile(sweepPath(sweepDir, 'trialsJson'), rows);
  writeAtomic(sweepPath(sweepDir, 'trialsCsv'), toCsv(rows.map((r) => ({ ...r, parameters: JSON.stringify(r.parameters) }))));
  const leaderboard = leaderboardText(sweep, rows, todo.length);
  writeAtomic(sweepPath(sweepDir, 'leaderboard'), leaderboard);
  return { rows, expansion, todo, leaderboard, done: todo.length === 0, retries: sweep.spec.retries };
}

const f4 = (v: number) => (Number.isFinite(v) ? v.toFixed(4) : '—');

function leaderboardText(sweep: LoadedSweep, rows: readonly ChildRow[], todo: number): string {
  const { select, name } = sweep.spec;
  const decl = METRIC_DECLARATIONS[select.metric];
  const label = `${select.metric}${select.k !== undefined ? `@${select.k}` : ''}${select.variant ? ` (${select.variant})` : ''}${decl.perTask ? ` of ${select.task ?? 'the first task'}` : ''}`;
  const higher = decl.direction === 'higher';
  const best = bestTrials(sweep, rows);
  const entries = best.map(({ group, trial }) => {
    const runs = rows.filter((r) => r.trial === trial && r.status === 'completed');
    const sel = rows.filter((r) => r.trial === trial && r.stage === 'search' && r.selection !== null).map((r) => r.selection!);
    const evals = new Map(runs.filter((r) => r.eval !== null).map((r) => [r.seed, r.eval!]));
    return { group, trial, params: rows.find((r) => r.trial === trial)!.parameters, selection: mean(sel), evals };
  });
  const score = (e: (typeof entries)[number]) => (e.evals.size ? mean([...e.evals.values()]) : e.selection);
  entries.sort((a, b) => (higher ? score(b) - score(a) : score(a) - score(b)) || a.trial - b.trial);
  const top = entries[0];
  const lines = [
    `# Sweep \`${name}\``,
    '',
    `Each group's best trial by ${label} on the ${select.split} split (mean over seeds); reported: the same metric on the eval split, mean ± std over seeds` +
      `${sweep.spec.final ? ' (search and final seeds)' : ''}; p: paired t-test by seed against the best group (${higher ? 'higher' : 'lower'} is better; significant below ${SIGNIFICANCE}).`,
    '',
    `| rank | group | trial | parameters | ${select.split} | eval mean ± std | seeds | Δ vs best | p |`,
    '|---:|---|---:|---|---:|---:|---:|---:|---:|',
  ];
  entries.forEach((e, i) => {
    const vals = [...e.evals.values()];
    const ms = vals.length ? `${f4(mean(vals))} ± ${vals.length > 1 ? f4(sampleStd(vals)) : '—'}` : '—';
    let delta = '';
    let p = '';
    if (top && e !== top) {
      const seeds = [...e.evals.keys()].filter((s) => top.evals.has(s)).sort((a, b) => a - b);
      const t = pairedTTest(seeds.map((s) => e.evals.get(s)!), seeds.map((s) => top.evals.get(s)!));
      delta = f4(t.meanDiff);
      p = Number.isFinite(t.p) ? t.p.toPrecision(3) : 'n/a';
    }
    const params = Object.entries(e.params).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ') || '—';
    lines.push(`| ${i + 1} | ${e.group} | ${e.trial} | ${params} | ${f4(e.selection)} | ${ms} | ${vals.length} | ${delta} | ${p} |`);
  });
  if (entries.length === 0) lines.push('| — | no completed trial yet | | | | | | | |');
  const total = rows.length;
  const completed = rows.filter((r) => r.status === 'completed').length;
  lines.push('', `${completed} of ${total} runs completed${todo ? `; ${todo} still to run (run the sweep again to continue)` : ''}.`);
  return lines.join('\n') + '\n';
}
