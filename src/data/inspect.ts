/**
 * `data inspect`: schema, rows, requests, rows per stage, label rates per stage and violations
 * of label nesting (purchase without click, in-scenario labels on unexposed rows, ...). Reads Parquet,
 * Arrow IPC and CSV; a file without role columns still gets its schema and rows, and the roles not
 * found are listed.
 */
import { STAGES } from '../config/experiment.js';
import { DataError } from '../base/errors.js';
import { KeyIndex } from './encode.js';
import { readBatches, tableInfo, type ColumnInfo, type RawBatch, type RawColumn } from './reader.js';

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
  /** Roles no column was found for (given none, and none of the usual names is in the file). */
  notFound: string[];
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
  const info = await tableInfo(file, 'auto', { csv: true });
  const roles = guessRoles(info.columns, given);
  const notFound = [
    ...(['request', 'user', 'stage'] as const).filter((r) => !roles[r]),
    ...['click', 'purchase', 'all_click', 'all_purchase'].filter((l) => !(l in roles.labels)),
  ];
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
  const t = newTally();
  for await (const batch of readBatches(info, wanted, 65536)) tallyBatch(batch, roles, t);
  return {
    file,
    format: info.format,
    rows: info.rows,
    columns: info.columns,
    roles,
    notFound,
    requests: roles.request ? t.requests.size : null,
    users: roles.user ? t.users.size : null,
    stages: t.stageNames.map((s) => ({ stage: s, rows: t.stageRows.get(s)! })),
    labelRates: labelRates(Object.keys(roles.labels), t),
    violations: [...t.violations.entries()].map(([rule, rows]) => ({ rule, rows })),
  };
}

/** What inspectFile counts while it reads. */
interface Tally {
  requests: KeyIndex;
  users: KeyIndex;
  stageNames: string[];
  stageRows: Map<string, number>;
  /** By `${label}\t${stage}`. */
  positives: Map<string, number>;
  violations: Map<string, number>;
}

function newTally(): Tally {
  return { requests: new KeyIndex(), users: new KeyIndex(), stageNames: [], stageRows: new Map(), positives: new Map(), violations: new Map() };
}

const bump = (m: Map<string, number>, k: string, by = 1) => m.set(k, (m.get(k) ?? 0) + by);
const keyOf = (c: RawColumn, i: number): string | number =>
  c.type === 'number' ? (c.valid && !c.valid[i] ? 'null' : c.values[i]!) : c.type === 'string' ? c.values[i] ?? 'null' : 'list';

function tallyBatch(batch: RawBatch, roles: Roles, t: Tally): void {
  const reqCol = roles.request ? batch.columns.get(roles.request)! : null;
  const userCol = roles.user ? batch.columns.get(roles.user)! : null;
  const stageCol = roles.stage ? batch.columns.get(roles.stage)! : null;
  const labelCols = Object.entries(roles.labels).map(([l, c]) => [l, batch.columns.get(c)! as Extract<RawColumn, { type: 'number' }>] as const);
  for (let i = 0; i < batch.length; i++) {
    if (reqCol) t.requests.idOf(keyOf(reqCol, i));
    if (userCol) t.users.idOf(keyOf(userCol, i));
    let stage = 'exposure';
    if (stageCol) {
      const raw = String(keyOf(stageCol, i));
      stage = /^\d$/.test(raw) && STAGES[Number(raw)] ? STAGES[Number(raw)]! : raw;
    }
    if (!t.stageRows.has(stage)) t.stageNames.push(stage);
    bump(t.stageRows, stage);
    const value: Record<string, number> = {};
    for (const [l, c] of labelCols) {
      const v = c.valid && !c.valid[i] ? NaN : c.values[i]!;
      value[l] = v;
      if (v === 1) bump(t.positives, `${l}\t${stage}`);
      else if (v !== 0) bump(t.violations, `${l} is not 0/1`);
    }
    for (const [a, b] of NESTING) if (a in value && b in value && value[a] === 1 && value[b] !== 1) bump(t.violations, `${a} without ${b}`);
    if (stage !== 'exposure') for (const l of ['click', 'purchase']) if (value[l] === 1) bump(t.violations, `${l} on an unexposed row`);
  }
}

function labelRates(labels: string[], t: Tally): InspectReport['labelRates'] {
  const out: InspectReport['labelRates'] = [];
  for (const l of labels) {
    for (const s of t.stageNames) {
      const rows = t.stageRows.get(s)!;
      const pos = t.positives.get(`${l}\t${s}`) ?? 0;
      out.push({ label: l, stage: s, positives: pos, rows, rate: rows ? pos / rows : 0 });
    }
  }
  return out;
}

export function formatInspect(r: InspectReport): string {
  const out: string[] = [];
  const num = (n: number) => n.toLocaleString('en-US');
  out.push(`${r.file}`);
  out.push(`  format ${r.format}, ${num(r.rows)} rows, ${r.columns.length} columns`);
  out.push(`  requests: ${r.requests === null ? '(no request column)' : num(r.requests)}${r.roles.request ? ` (column ${r.roles.request})` : ''}`);
  if (r.notFound.length) out.push(`  role columns not found: ${r.notFound.join(', ')} (name them with --request, --user, --stage, --label name=col)`);
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
