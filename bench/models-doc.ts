/**
 * docs/benchmarks.md from the model benchmark's sweep folder (bench/models.ts). Everything in the
 * document is computed from the folder: each group's best trial (by the sweep's own rule, on
 * validation), its runs compared on the eval split by the compare code (report/compare.ts: seed
 * groups, paired tests against ResFlow, Holm correction, leader marks), the oracle's values on the same
 * eval rows (split `eval-oracle`, README.md "Ground truth") beside every column, the cost, the budget
 * and the residual ablation's finding.
 */
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bestTrials, childRows, type ChildRow } from '../src/app/sweep/finalize.js';
import { openSweep } from '../src/app/sweep/trial.js';
import type { Child } from '../src/app/sweep/expand.js';
import { buildComparison, type Column, type Comparison, type Row } from '../src/report/compare.js';
import { loadRun, type ComparedRun } from '../src/report/compare-runs.js';
import { mainTable, pValueTable, renderMarkdownTable, fmtP, type TableModel } from '../src/report/compare-tables.js';
import { bestNote } from '../src/report/compare-render.js';
import { mean, SIGNIFICANCE } from '../src/report/statistics.js';

export interface Invocation {
  started: string;
  ended: string;
  ran: number;
  parallel: number;
  threads: number;
  load_start: number[];
  load_end: number[];
}

export interface DocInput {
  sweepDir: string;
  specFile: string;
  invocations: Invocation[];
  commit: string;
  /** The synthetic preset the sweep's configs read (PRESET_DATA). */
  preset: string;
}

/** What each synthetic preset holds (src/data/synth-model.ts PRESETS, split 80/10/10 by request). */
const PRESET_DATA: Record<string, string> = {
  small: '8,000 training requests, ~800k rows, ~80k exposures; 1,000 validation and 1,000 eval requests of ~100 candidates',
  medium: '64,000 training requests, ~8M rows, ~640k exposures; 8,000 validation and 8,000 eval requests of ~125 candidates (~1M rows each)',
};

/** The group p-values are tested against. */
const REFERENCE_GROUP = 'resflow';
/** The residual ablation's group (configs/ablation/resflow-residual-none.yaml). */
const ABLATION_GROUP = 'resflow-residual-none';
/** The K of the @K columns: the simulated production pre-ranker keeps 32 of ~100 candidates. */
const K = 32;
const METRICS = ['auc', 'logloss', `wrecall@${K}`, `ash@${K}`, `online@${K}`, 'cost'];

const f4 = (v: number) => (Number.isFinite(v) ? v.toFixed(4) : 'n/a');
const pct = (v: number) => (Number.isFinite(v) ? `${(100 * v).toFixed(1)}%` : 'n/a');
const int = (v: number) => Math.round(v).toLocaleString('en-US');
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

interface GroupResult {
  group: string;
  trial: number;
  params: Record<string, unknown>;
  /** Mean validation selection metric of the best trial, and its range over the group's trials. */
  selection: number;
  trialRange: [number, number];
  trialsCompleted: number;
  trialsTotal: number;
  runs: ComparedRun[];
}

/** The sweep's rows as finalize.ts builds them, read only (nothing is written into the folder). */
function sweepRows(dir: string) {
  const { sweep, expansion } = openSweep(dir);
  const rows: (ChildRow & { child: Child })[] = childRows(dir, sweep, expansion).rows.map((r, i) => ({ ...r, child: expansion.children[i]! }));
  return { sweep, expansion, rows };
}

function groupResults(dir: string) {
  const { sweep, expansion, rows } = sweepRows(dir);
  const best = new Map(bestTrials(sweep, rows).map((b) => [b.group, b.trial]));
  const results: GroupResult[] = [];
  for (const g of expansion.groups) {
    const trial = best.get(g.name);
    if (trial === undefined) continue;
    const perTrial = new Map<number, number[]>();
    for (const r of rows) if (r.group === g.name && r.stage === 'search' && r.selection !== null) perTrial.set(r.trial, [...(perTrial.get(r.trial) ?? []), r.selection]);
    const means = [...perTrial.values()].map(mean);
    const completedTrials = [...perTrial.keys()].filter((t) => rows.filter((r) => r.trial === t && r.stage === 'search').every((r) => r.status === 'completed')).length;
    const runs = rows.filter((r) => r.trial === trial && r.status === 'completed').map((r) => loadRun(path.join(dir, r.run)));
    results.push({
      group: g.name,
      trial,
      params: rows.find((r) => r.trial === trial)!.parameters,
      selection: mean(perTrial.get(trial)!),
      trialRange: [Math.min(...means), Math.max(...means)],
      trialsCompleted: completedTrials,
      trialsTotal: expansion.trials.filter((t) => t.group === g.name).length,
      runs,
    });
  }
  return { sweep, expansion, rows, results };
}

/** The oracle's value for a column: the same metric in split eval-oracle (online@K: the `oracle` reference). */
function oracleValue(runs: readonly ComparedRun[], col: Column, task?: string): { value: number; same: boolean } {
  const values = runs.flatMap((run) =>
    run.records.filter((r) => r.split === 'eval-oracle' && r.name === col.name && r.task === (task ?? (col.name === 'online' ? 'oracle' : col.task)) && (task === 'logged' || r.k === col.k) && r.variant === col.variant).map((r) => r.value),
  );
  if (values.length === 0) return { value: NaN, same: true };
  return { value: values[0]!, same: Math.max(...values) - Math.min(...values) < 1e-12 };
}

function cellMean(row: Row | undefined, col: Column | undefined): number {
  return row && col ? (row.cells.get(col.key)?.mean ?? NaN) : NaN;
}

export function benchmarksDoc(o: DocInput): string {
  if (!existsSync(path.join(o.sweepDir, 'sweep.yaml'))) return `# Model benchmarks\n\nNo sweep folder at ${o.sweepDir}: run \`npm run bench:models\`.\n`;
  const { sweep, expansion, rows, results } = groupResults(o.sweepDir);
  const groupOf = new Map<string, string>();
  for (const g of results) for (const r of g.runs) groupOf.set(r.dir, g.group);
  // micro variants left out (the macro ones are the headline), so the Holm correction counts the tests shown
  const runs = results.flatMap((g) => g.runs).map((r) => ({ ...r, records: r.records.filter((x) => x.variant !== 'micro') }));
  const ref = results.find((g) => g.group === REFERENCE_GROUP)?.runs[0]?.dir;
  const cmp: Comparison = buildComparison(runs, { metrics: METRICS, ...(ref ? { reference: ref } : {}) });
  for (const row of cmp.rows) row.label = groupOf.get(row.runs[0]!.dir) ?? row.label;

  // the leaderboard: the compare table, the cost columns, and the oracle (and the logged funnel) under it
  const table: TableModel = mainTable(cmp);
  table.head.push({ top: '', bottom: 'dense params', numeric: true }, { top: '', bottom: 'embedding params', numeric: true });
  cmp.rows.forEach((row, i) => {
    const cost = row.runs[0]!.info.cost as Record<string, number> | undefined;
    table.rows[i]!.push({ text: cost ? int(cost['dense_parameters']!) : '', numeric: true }, { text: cost ? int(cost['embedding_parameters']!) : '', numeric: true });
  });
  const lead = table.head.length - cmp.columns.length - 2; // label, n, seeds
  const oracleRow = (label: string, task?: string) => [
    { text: label },
    ...Array.from({ length: lead - 1 }, () => ({ text: '' })),
    ...cmp.columns.map((c) => {
      if (c.kind === 'cost') return { text: '', numeric: true };
      const v = task && c.name !== 'online' ? { value: NaN, same: true } : oracleValue(runs, c, task);
      return { text: Number.isFinite(v.value) ? `${f4(v.value)}${v.same ? '' : ' (differs by run!)'}` : '', numeric: true };
    }),
    { text: '', numeric: true },
    { text: '', numeric: true },
  ];
  table.rows.push(oracleRow('**oracle** (true probabilities)'), oracleRow('logged production funnel', 'logged'));

  const col = (name: string, task: string) => cmp.columns.find((c) => c.name === name && (c.task === task || name === 'online'));
  const aucCtcvr = col('auc', 'ctcvr');
  const aucCtr = col('auc', 'ctr');
  const ash = col('ash', 'fused');
  const wr = col('wrecall', 'fused');
  const online = col('online', 'fused');
  const oracle = (c: Column | undefined) => (c ? oracleValue(runs, c).value : NaN);
  const logged = online ? oracleValue(runs, online, 'logged').value : NaN;

  // how far each group gets towards the oracle
  const share: TableModel = {
    head: [
      { top: '', bottom: 'group', numeric: false },
      { top: 'ctr', bottom: 'AUC − 0.5, share of the oracle\'s', numeric: true },
      { top: 'ctcvr', bottom: 'AUC − 0.5, share of the oracle\'s', numeric: true },
      { top: 'fused', bottom: `ASH@${K}, share of the oracle's`, numeric: true },
      { top: 'fused', bottom: `online@${K}, share of the oracle's`, numeric: true },
      { top: 'fused', bottom: `online@${K} − logged funnel's`, numeric: true },
    ],
    rows: cmp.rows.filter((r) => !r.excluded).map((r) => [
      { text: r.label },
      { text: pct((cellMean(r, aucCtr) - 0.5) / (oracle(aucCtr) - 0.5)), numeric: true },
      { text: pct((cellMean(r, aucCtcvr) - 0.5) / (oracle(aucCtcvr) - 0.5)), numeric: true },
      { text: pct(cellMean(r, ash) / oracle(ash)), numeric: true },
      { text: pct(cellMean(r, online) / oracle(online)), numeric: true },
      { text: f4(cellMean(r, online) - logged), numeric: true },
    ]),
  };

  // the tuned settings
  const spaceKeys = Object.keys(sweep.spec.space);
  const fmtParam = (v: unknown) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toPrecision(3)) : JSON.stringify(v));
  const epochsOf = (r: ComparedRun) => r.history?.rows.length ?? NaN;
  const bestEpochOf = (r: ComparedRun) => {
    const h = r.history?.rows ?? [];
    let best = -1;
    h.forEach((row, i) => (best < 0 || (row['val_ctcvr_auc'] ?? -Infinity) > (h[best]!['val_ctcvr_auc'] ?? -Infinity) ? (best = i) : 0));
    return best + 1;
  };
  const tuned: TableModel = {
    head: [
      { top: '', bottom: 'group', numeric: false },
      { top: '', bottom: 'trial', numeric: true },
      ...spaceKeys.map((k) => ({ top: '', bottom: k, numeric: true })),
      { top: '', bottom: `validation ctcvr AUC (best point, search seed${sweep.spec.seeds.length > 1 ? 's' : ''})`, numeric: true },
      { top: '', bottom: 'all its points: min – max', numeric: true },
      { top: '', bottom: 'points done', numeric: true },
      { top: '', bottom: 'epochs trained / best epoch (median over the seeds)', numeric: true },
    ],
    rows: results.map((g) => [
      { text: g.group },
      { text: String(g.trial), numeric: true },
      ...spaceKeys.map((k) => ({ text: fmtParam(g.params[k]), numeric: true })),
      { text: f4(g.selection), numeric: true },
      { text: `${f4(g.trialRange[0])} – ${f4(g.trialRange[1])}`, numeric: true },
      { text: `${g.trialsCompleted} of ${g.trialsTotal}`, numeric: true },
      { text: `${median(g.runs.map(epochsOf))} / ${median(g.runs.map(bestEpochOf))}`, numeric: true },
    ]),
  };

  // the budget and the time
  const base = expansion.children[0]!.config;
  const spaceText = spaceKeys.map((k) => `\`${k}\` ${JSON.stringify(sweep.spec.space[k])}`).join(', ');
  const random = spaceKeys.some((k) => !('grid' in sweep.spec.space[k]!));
  const G = expansion.groups.length;
  const points = expansion.trials.length / G;
  const extraSeeds = (sweep.spec.final?.seeds ?? []).filter((x) => !sweep.spec.seeds.includes(x));
  const completed = rows.filter((r) => r.status === 'completed');
  const failed = rows.filter((r) => r.status === 'failed');
  const runMinutes = completed.reduce((s, r) => {
    const info = JSON.parse(readFileSync(path.join(o.sweepDir, r.run, 'run.json'), 'utf8')) as { created: string; updated: string };
    return s + (Date.parse(info.updated) - Date.parse(info.created)) / 60000;
  }, 0);
  const wall = o.invocations.reduce((s, i) => s + (Date.parse(i.ended) - Date.parse(i.started)) / 60000, 0);
  const loads = o.invocations.map((i) => `${i.load_start[0]} → ${i.load_end[0]}`).join(', ');
  const timeText = o.invocations.length
    ? `wall time ${wall.toFixed(1)} min (${o.invocations.map((i) => `${i.ran} runs, ${i.parallel} at once × ${i.threads} thread`).join('; ')}; 1-min load average at start → end: ${loads})`
    : 'wall time not recorded (no invocation of bench:models trained these runs)';
  const backend = (completed[0] && (JSON.parse(readFileSync(path.join(o.sweepDir, completed[0].run, 'run.json'), 'utf8')) as { backend?: string }).backend) || 'unknown';
  // steps of the first epoch of a completed run (history.csv's second column)
  const stepsPerEpoch = completed[0] ? Number(readFileSync(path.join(o.sweepDir, completed[0].run, 'history.csv'), 'utf8').split('\n')[1]?.split(',')[1]) : NaN;
  const lastDay = o.invocations.length ? o.invocations[o.invocations.length - 1]!.ended.slice(0, 10) : new Date().toISOString().slice(0, 10);

  const out: string[] = [
    o.preset === 'small' ? '# Model benchmarks' : `# Model benchmarks on the ${o.preset} preset`,
    '',
    `Made by \`npm run bench:models\` (bench/models.ts) on ${lastDay} at commit ${o.commit}: the sweep \`${o.specFile}\` run through`,
    `\`resflow sweep\`'s use case (local launcher) into \`.bench/${path.basename(o.sweepDir)}/\`, then this page from that folder.`,
    `Data: the \`${o.preset}\` synthetic preset (\`resflow data synth --preset ${o.preset} --seed 1\`: ${PRESET_DATA[o.preset] ?? 'see src/data/synth-model.ts'}),`,
    'CTR and CTCVR tasks over exposures.',
    '',
    '## Budget',
    '',
    `- **Same budget per model**: ${expansion.groups.length} groups (${expansion.groups.map((g) => `\`${g.name}\``).join(', ')}), each tuned over the same ${points} ` +
      `${random ? `random draws (seed ${sweep.spec.random.seed})` : 'grid points'} of ${spaceText}; ` +
      `every point trained with seed${sweep.spec.seeds.length > 1 ? 's' : ''} ${sweep.spec.seeds.join(', ')}` +
      (extraSeeds.length
        ? `, then each group's best point re-run with seeds ${extraSeeds.join(', ')}: ${G} × (${points}${sweep.spec.seeds.length > 1 ? ` × ${sweep.spec.seeds.length}` : ''} + ${extraSeeds.length}) = ${G * (points * sweep.spec.seeds.length + extraSeeds.length)} runs.`
        : `: ${G} × ${points} × ${sweep.spec.seeds.length} = ${G * points * sweep.spec.seeds.length} runs.`),
    `- Each run: up to ${base.train.epochs} epochs of batch ${base.train.batch_size}, Adam (dense) and lazy Adam (embeddings), early stopping on the validation ` +
      `${base.train.early_stopping?.task ?? ''} ${base.train.early_stopping?.metric ?? ''} (patience ${base.train.early_stopping?.patience ?? '-'}, the best epoch's weights kept). ` +
      'Embedding L2 (`train.embedding_l2`, 0 = off) is lazy: it acts on the rows a batch touches (README.md, "How training works"). ' +
      (spaceKeys.includes('train.optimizer.weight_decay')
        ? ''
        : `Decoupled weight decay is not searched (the overfitting is in the ID embeddings: docs/regularisation.md): a run makes ~${stepsPerEpoch} dense steps per epoch, ` +
          `so at lr 1e-3, d = 0.1 would shrink the dense weights by about ${pct(1 - (1 - 1e-3 * 0.1) ** (stepsPerEpoch * base.train.epochs))} over ${base.train.epochs} epochs (1 − (1 − lr·d)^steps).`),
    `- **Selection**: each group's best point is the one with the highest ${sweep.spec.seeds.length > 1 ? 'mean ' : ''}${sweep.spec.select.task ?? ''} ${sweep.spec.select.metric} ` +
      `${sweep.spec.seeds.length > 1 ? 'over its seeds ' : `(seed ${sweep.spec.seeds[0]}) `}on the **${sweep.spec.select.split}** split; everything below is that point's runs ` +
      `(seeds ${[...sweep.spec.seeds, ...extraSeeds].join(', ')}) on the **eval** split, which no choice looked at.`,
    `- **Time**: ${completed.length} of ${rows.length} runs completed${failed.length ? `, ${failed.length} failed` : ''}; ${timeText}; the runs' own time summed: ${runMinutes.toFixed(0)} min.`,
    `- Machine: ${os.cpus().length} cores (${os.cpus()[0]?.model.trim() ?? 'unknown CPU'}), shared with other work, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}; ${backend}.`,
    '',
    '## Leaderboard (eval split)',
    '',
    `Mean ± sample std over seeds of each group's best point. Under the groups, the **oracle**: the same metric on the same eval rows with each task ` +
      'scored by the true probability of its label (README.md, "Ground truth"); its WR@K is trivially 1 (it knows which rows were shown). ' +
      `online@${K} is the simulated expected purchases per request; its oracle ranks every pool by the true relevance, and the logged production funnel is given too.`,
    '',
    renderMarkdownTable(table),
    '',
    ...bestNote(cmp).map((l) => `- ${l.replace(/^\*/, '\\*').replace(/^=/, '\\=')}`),
    '- µs/1000: dense scoring time of 1,000 candidates (run.json `cost`, median of 20 batches, embedding lookup excluded), noisy on a shared machine.',
    '',
  ];
  const p = pValueTable(cmp);
  if (p && cmp.reference) {
    out.push(
      `### Paired tests against ResFlow`,
      '',
      `Paired t-test of each group against \`${cmp.reference.label}\` per metric, runs paired by seed; two-sided p, ${cmp.correction === 'holm' ? 'Holm-adjusted across this table' : 'unadjusted'}; \\* adjusted p < ${SIGNIFICANCE}.`,
      '',
      renderMarkdownTable(p),
      '',
    );
    const tests = cmp.rows.flatMap((r) => cmp.columns.flatMap((c) => (r.cells.get(c.key)?.test && Number.isFinite(r.cells.get(c.key)!.test!.p) ? [{ r, c, t: r.cells.get(c.key)!.test! }] : [])));
    if (tests.length) {
      const low = tests.reduce((a, b) => (b.t.p < a.t.p ? b : a));
      const below = tests.filter((x) => x.t.p < SIGNIFICANCE).length;
      out.push(
        `Before the correction: ${below} of ${tests.length} p-values are below ${SIGNIFICANCE} (chance alone gives about ${(tests.length * SIGNIFICANCE).toFixed(1)}); ` +
          `the smallest is ${fmtP(low.t.p)} (\`${low.r.label}\`, ${low.c.task} ${low.c.label}, difference ${low.t.meanDiff >= 0 ? '+' : ''}${f4(low.t.meanDiff)}).`,
        '',
      );
    }
  }
  out.push(
    '## Distance to the oracle',
    '',
    'AUC above chance as a share of the oracle\'s, ASH@K and online@K as a share of the oracle\'s, and online@K against what the logged production funnel got.',
    '',
    renderMarkdownTable(share),
    '',
    '## Tuned settings',
    '',
    'Each group\'s chosen point. Its validation value is the best of the group\'s points on one seed, so it is optimistic (a maximum over noisy values); the eval numbers above are not.',
    '',
    renderMarkdownTable(tuned),
    '',
  );
  out.push(...residualFinding(cmp, runs), '');
  out.push(
    '## Not covered',
    '',
    o.preset === 'small'
      ? '- Ten times the data: the same sweep on the `medium` preset is docs/benchmarks-medium.md (configs/sweeps/models-medium.yaml).'
      : `- Other data sizes: the same sweep on the \`small\` preset is docs/benchmarks.md. At ${(runMinutes / Math.max(completed.length, 1)).toFixed(1)} min per run, larger data wants a cluster (\`--launcher slurm\`).`,
    '- The simulated funnel is not real logs: these numbers check the models against a known truth, not the size of effects on real traffic.',
  );
  return out.join('\n') + '\n';
}

/** The residual ablation: ResFlow against the same towers without residual links, in words and numbers. */
function residualFinding(cmp: Comparison, runs: readonly ComparedRun[]): string[] {
  const withRes = cmp.rows.find((r) => r.label === REFERENCE_GROUP);
  const without = cmp.rows.find((r) => r.label === ABLATION_GROUP);
  if (!withRes || !without) return ['## Do the residual links help?', '', `Not measured: the sweep has no \`${ABLATION_GROUP}\` group yet.`];
  const metricCols = cmp.columns.filter((c) => c.kind === 'metric');
  const lines = metricCols.map((c) => {
    const t = without.cells.get(c.key)?.test;
    const o = oracleValue(runs, c).value;
    const a = cellMean(withRes, c);
    const b = cellMean(without, c);
    return { c, a, b, diff: a - b, o, p: t?.p ?? NaN, pAdj: t?.pAdjusted ?? NaN };
  });
  const significant = lines.filter((l) => l.pAdj < SIGNIFICANCE);
  const better = significant.filter((l) => (l.c.higherIsBetter ? l.diff > 0 : l.diff < 0));
  const worse = significant.filter((l) => !(l.c.higherIsBetter ? l.diff > 0 : l.diff < 0));
  const name = (l: (typeof lines)[number]) => `${l.c.task} ${l.c.label}`;
  const tested = lines.filter((l) => Number.isFinite(l.p));
  const verdict =
    tested.length === 0
      ? '**Not decided yet**: fewer than 2 seeds of each variant, so nothing could be tested.'
      : significant.length === 0
      ? `**No.** With each variant tuned with the same budget, ResFlow's residual links make no significant difference on any metric (paired t-test by seed, Holm-adjusted, p ≥ ${SIGNIFICANCE}).`
      : better.length > 0 && worse.length === 0
        ? `**Yes, on ${better.map(name).join(', ')}**: ResFlow with its residual links is significantly better there (Holm-adjusted p < ${SIGNIFICANCE}); no significant difference elsewhere.`
        : worse.length > 0 && better.length === 0
          ? `**No: they hurt on ${worse.map(name).join(', ')}** (Holm-adjusted p < ${SIGNIFICANCE}); no significant difference elsewhere.`
          : `**Mixed**: better on ${better.map(name).join(', ')}, worse on ${worse.map(name).join(', ')} (Holm-adjusted p < ${SIGNIFICANCE}).`;
  const seedStd = mean(lines.filter((l) => l.c.name === 'auc' && l.c.task === 'ctcvr').flatMap((l) => [withRes.cells.get(l.c.key)?.std ?? NaN, without.cells.get(l.c.key)?.std ?? NaN]));
  return [
    '## Do the residual links help?',
    '',
    `\`${ABLATION_GROUP}\` is \`${REFERENCE_GROUP}\` with \`model.residual: none\` (configs/ablation/resflow-residual-none.yaml), tuned over the same points. ` + verdict,
    '',
    '| metric | ResFlow | residual none | difference | p | Holm p | oracle | difference / (oracle − residual none) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...lines.map((l) => `| ${name(l)} | ${f4(l.a)} | ${f4(l.b)} | ${l.diff >= 0 ? '+' : ''}${f4(l.diff)} | ${fmtP(l.p)} | ${fmtP(l.pAdj)} | ${f4(l.o)} | ${Number.isFinite(l.o) && l.c.name !== 'wrecall' ? pct(l.diff / (l.o - l.b)) : 'n/a'} |`),
    '',
    `${withRes.runs.length} and ${without.runs.length} seeds; the seed-to-seed std of the ctcvr AUC is about ${f4(seedStd)}, so with 3 seeds only differences of several ` +
      'times that can be told apart. The last column puts the difference against the gap the variant without residuals leaves to the oracle.',
  ];
}

