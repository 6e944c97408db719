/**
 * `data inspect`: schema, rows, requests, rows per stage, label rates per stage and violations
 * of label nesting (purchase without click, in-scenario labels on unexposed rows, ...).
 */
import { STAGES } from '../config/experiment.js';
import { DataError } from '../base/errors.js';
import { KeyIndex } from './encode.js';
import { readBatches, tableInfo, type ColumnInfo, type RawColumn } from './reader.js';

export interface Roles {
  request?: string;
  user?: string;
  stage?: string;
  labels: Record<string, string>;
}

export interface InspectReport {
  file: string;
  format: string;
  rows: number;
  columns: ColumnInfo[];
  roles: Roles;
  requests: number | null;
  users: number | null;
  stages: { stage: string; rows: number }[];
  labelRates: { label: string; stage: string; positives: number; rows: number; rate: number }[];
  violations: { rule: string; rows: number }[];
}

const GUESSES: Record<string, string[]> = {
  request: ['request_id', 'request', 'search_id', 'session_id'],
  user: ['user_id', 'user', 'uid'],
  stage: ['stage'],
  click: ['click', 'is_click', 'clk'],
  purchase: ['purchase', 'conversion', 'buy', 'is_purchase', 'pay'],
  all_click: ['all_click'],
  all_purchase: ['all_purchase'],
};

/** Fills roles the caller did not give from the usual column names of public data sets. */
export function guessRoles(columns: ColumnInfo[], given: Partial<Roles> = {}): Roles {
  const names = new Set(columns.map((c) => c.name));
  const pick = (role: string) => GUESSES[role]!.find((n) => names.has(n));
  const labels: Record<string, string> = { ...given.labels };
  for (const l of ['click', 'purchase', 'all_click', 'all_purchase']) if (!(l in labels)) {
    const col = pick(l);
    if (col) labels[l] = col;
  }
  return { request: given.request ?? pick('request'), user: given.user ?? pick('user'), stage: given.stage ?? pick('stage'), labels };
}

// Each rule: rows where `a` is 1 but `b` is 0 break "a ⊂ b".
const NESTING: [string, string][] = [
  ['purchase', 'click'],
  ['click', 'all_click'],
  ['purchase', 'all_purchase'],
  ['all_purchase', 'all_click'],
];

export async function inspectFile(file: string, given: Partial<Roles> = {}): Promise<InspectReport> {
  const info = await tableInfo(file);
  const roles = guessRoles(info.columns, given);
  const names = new Set(info.columns.map((c) => c.name));
  for (const [role, col] of Object.entries({ request: roles.request, user: roles.user, stage: roles.stage, ...roles.labels })) {
    if (col && !names.has(col)) throw new DataError(`${file}: missing column \`${col}\` (${role}); the file has: ${[...names].join(', ')}`);
  }
  const wanted = [
    ...(roles.request ? [{ name: roles.request, kind: 'id' as const }] : []),
    ...(roles.user ? [{ name: roles.user, kind: 'id' as const }] : []),
    ...(roles.stage ? [{ name: roles.stage, kind: 'id' as const }] : []),
    ...Object.values(roles.labels).map((name) => ({ name, kind: 'number' as const })),
  ];
  const requests = new KeyIndex();
  const users = new KeyIndex();
  const stageNames: string[] = [];
  const stageRows = new Map<string, number>();
  const positives = new Map<string, number>(); // `${label}\t${stage}`
  const violations = new Map<string, number>();
  const bump = (m: Map<string, number>, k: string, by = 1) => m.set(k, (m.get(k) ?? 0) + by);
  const keyOf = (c: RawColumn, i: number): string | number =>
    c.type === 'number' ? (c.valid && !c.valid[i] ? 'null' : c.values[i]!) : c.type === 'string' ? c.values[i] ?? 'null' : 'list';

  for await (const batch of readBatches(info, wanted, 65536)) {
    const n = batch.length;
    const reqCol = roles.request ? batch.columns.get(roles.request)! : null;
    const userCol = roles.user ? batch.columns.get(roles.user)! : null;
    const stageCol = roles.stage ? batch.columns.get(roles.stage)! : null;
    const labelCols = Object.entries(roles.labels).map(([l, c]) => [l, batch.columns.get(c)! as Extract<RawColumn, { type: 'number' }>] as const);
    for (let i = 0; i < n; i++) {
      if (reqCol) requests.idOf(keyOf(reqCol, i));
      if (userCol) users.idOf(keyOf(userCol, i));
      let stage = 'exposure';
      if (stageCol) {
        const raw = String(keyOf(stageCol, i));
        stage = /^\d$/.test(raw) && STAGES[Number(raw)] ? STAGES[Number(raw)]! : raw;
      }
      if (!stageRows.has(stage)) stageNames.push(stage);
      bump(stageRows, stage);
      const value: Record<string, number> = {};
      for (const [l, c] of labelCols) {
        const v = c.valid && !c.valid[i] ? NaN : c.values[i]!;
        value[l] = v;
        if (v === 1) bump(positives, `${l}\t${stage}`);
        else if (v !== 0) bump(violations, `${l} is not 0/1`);
      }
      for (const [a, b] of NESTING) if (a in value && b in value && value[a] === 1 && value[b] !== 1) bump(violations, `${a} without ${b}`);
      if (stage !== 'exposure') for (const l of ['click', 'purchase']) if (value[l] === 1) bump(violations, `${l} on an unexposed row`);
    }
  }
  const labelRates: InspectReport['labelRates'] = [];
  for (const l of Object.keys(roles.labels)) {
    for (const s of stageNames) {
      const rows = stageRows.get(s)!;
      const pos = positives.get(`${l}\t${s}`) ?? 0;
      labelRates.push({ label: l, stage: s, positives: pos, rows, rate: rows ? pos / rows : 0 });
    }
  }
  return {
    file,
    format: info.format,
    rows: info.rows,
    columns: info.columns,
    roles,
    requests: roles.request ? requests.size : null,
    users: roles.user ? users.size : null,
    stages: stageNames.map((s) => ({ stage: s, rows: stageRows.get(s)! })),
    labelRates,
    violations: [...violations.entries()].map(([rule, rows]) => ({ rule, rows })),
  };
}

export function formatInspect(r: InspectReport): string {
  const out: string[] = [];
  const num = (n: number) => n.toLocaleString('en-US');
  out.push(`${r.file}`);
  out.push(`  format ${r.format}, ${num(r.rows)} rows, ${r.columns.length} columns`);
  out.push(`  requests: ${r.requests === null ? '(no request column)' : num(r.requests)}${r.roles.request ? ` (column ${r.roles.request})` : ''}`);
  if (r.users !== null) out.push(`  users: ${num(r.users)} (column ${r.roles.user})`);
  out.push('');
  out.push('  columns:');
  for (const c of r.columns) out.push(`    ${c.name.padEnd(28)} ${c.type}`);
  out.push('');
  out.push(`  rows per stage${r.roles.stage ? ` (column ${r.roles.stage})` : ' (no stage column: every row is an exposure)'}:`);
  for (const s of r.stages) out.push(`    ${s.stage.padEnd(20)} ${num(s.rows).padStart(12)}  ${((100 * s.rows) / Math.max(r.rows, 1)).toFixed(1).padStart(5)}%`);
  if (r.labelRates.length) {
    out.push('');
    out.push('  label rates per stage:');
    out.push(`    ${'label'.padEnd(14)} ${'stage'.padEnd(20)} ${'positives'.padStart(10)} ${'rate'.padStart(9)}`);
    for (const l of r.labelRates) out.push(`    ${l.label.padEnd(14)} ${l.stage.padEnd(20)} ${num(l.positives).padStart(10)} ${(100 * l.rate).toFixed(3).padStart(8)}%`);
  }
  out.push('');
  if (r.violations.length === 0) out.push('  label nesting: ok (purchase ⊂ click ⊂ all_click, purchase ⊂ all_purchase ⊂ all_click)');
  else {
    out.push('  label nesting VIOLATIONS:');
    for (const v of r.violations) out.push(`    ${v.rule}: ${num(v.rows)} rows`);
  }
  return out.join('\n');
}
