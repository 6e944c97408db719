/**
 * Score fusion (docs/domain.md, Score fusion): one ranking score per row from several task probabilities.
 *   additive        s = sum_t a_t p_t
 *   multiplicative  s = prod_t p_t^{a_t}, computed as exp(sum_t a_t log p_t) with p clipped to [1e-7, 1]
 * Tasks missing from the weights get weight 1.
 */
import { UsageError } from '../base/errors.js';
import { FUSION_MODES, type FusionConfig, type FusionMode } from '../config/experiment.js';

export { FUSION_MODES, type FusionMode } from '../config/experiment.js';

/** A fusion: the config's `fusion` section, or a --fusion spec (mode, weight per task name; tasks not named get 1). */
export type FusionSpec = FusionConfig;

function isFusionMode(mode: string): mode is FusionMode {
  return (FUSION_MODES as readonly string[]).includes(mode);
}

/** Lower clip for multiplicative fusion, so that log p is finite. */
export const FUSION_EPS = 1e-7;

/**
 * Fuses per-task probabilities into one score per row (Float64Array). Every array must have the
 * same length. A weight naming a task that is not in `probsByTask` is a UsageError (likely a typo
 * in a config or a --fusion spec).
 */
export function fuseScores(
  probsByTask: Readonly<Record<string, Float32Array | Float64Array>>,
  mode: FusionMode,
  weights: Readonly<Record<string, number>> = {},
): Float64Array {
  const tasks = Object.keys(probsByTask);
  if (tasks.length === 0) throw new UsageError('score fusion needs at least one task');
  if (!isFusionMode(mode)) {
    throw new UsageError(`unknown fusion mode \`${String(mode)}\`; expected ${FUSION_MODES.join(' or ')}`);
  }
  for (const name of Object.keys(weights)) {
    if (!tasks.includes(name)) {
      throw new UsageError(`fusion weight names task \`${name}\`, which has no scores (tasks: ${tasks.join(', ')})`);
    }
    if (!Number.isFinite(weights[name])) throw new UsageError(`fusion weight for \`${name}\` must be a finite number, got ${weights[name]}`);
  }
  const n = probsByTask[tasks[0]].length;
  for (const t of tasks) {
    if (probsByTask[t].length !== n) {
      throw new RangeError(`task \`${t}\` has ${probsByTask[t].length} scores, \`${tasks[0]}\` has ${n}`);
    }
  }
  const out = new Float64Array(n);
  for (const t of tasks) {
    const a = Object.prototype.hasOwnProperty.call(weights, t) ? weights[t] : 1;
    if (a === 0) continue;
    const p = probsByTask[t];
    if (mode === 'additive') {
      for (let i = 0; i < n; i++) out[i] += a * p[i];
    } else {
      for (let i = 0; i < n; i++) {
        const v = p[i];
        out[i] += a * Math.log(v < FUSION_EPS ? FUSION_EPS : v > 1 ? 1 : v); // NaN stays NaN
      }
    }
  }
  if (mode === 'multiplicative') for (let i = 0; i < n; i++) out[i] = Math.exp(out[i]);
  return out;
}

const SPEC_EXAMPLE = 'e.g. "additive:ctr=1,ctcvr=2" or "multiplicative"';

/**
 * Parses a fusion spec `MODE[:TASK=WEIGHT,...]`, e.g. `additive:ctr=1,ctcvr=2` or `multiplicative`.
 * Whitespace around parts is ignored. Throws UsageError naming the spec and what was expected.
 */
export function parseFusionSpec(spec: string): FusionSpec {
  const bad = (what: string): UsageError => new UsageError(`invalid fusion spec "${spec}": ${what} (${SPEC_EXAMPLE})`);
  const colon = spec.indexOf(':');
  const modeText = (colon === -1 ? spec : spec.slice(0, colon)).trim();
  if (modeText === '') throw bad(`missing mode; expected ${FUSION_MODES.join(' or ')}`);
  if (!isFusionMode(modeText)) {
    const lower = modeText.toLowerCase();
    const hint = FUSION_MODES.find((m) => m.startsWith(lower.slice(0, 3)));
    throw bad(`unknown mode "${modeText}"; expected ${FUSION_MODES.join(' or ')}${hint ? ` (did you mean ${hint}?)` : ''}`);
  }
  const weights: Record<string, number> = {};
  if (colon !== -1) {
    const rest = spec.slice(colon + 1);
    if (rest.trim() === '') throw bad('nothing after ":"; expected TASK=WEIGHT pairs separated by commas');
    for (const part of rest.split(',')) {
      const item = part.trim();
      if (item === '') throw bad('empty TASK=WEIGHT pair (stray comma?)');
      const eq = item.indexOf('=');
      if (eq === -1) throw bad(`"${item}" is not TASK=WEIGHT`);
      const task = item.slice(0, eq).trim();
      const wText = item.slice(eq + 1).trim();
      if (task === '') throw bad(`"${item}" has no task name before "="`);
      if (wText === '') throw bad(`"${item}" has no weight after "="`);
      const w = Number(wText);
      if (!Number.isFinite(w)) throw bad(`weight "${wText}" for task "${task}" is not a finite number`);
      if (Object.prototype.hasOwnProperty.call(weights, task)) throw bad(`task "${task}" is given twice`);
      weights[task] = w;
    }
  }
  return { mode: modeText, weights };
}
