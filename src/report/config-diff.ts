/**
 * Config differences between runs: each config is flattened to dotted key paths (`model.residual`,
 * `tasks[1].pos_weight`, lists of plain values as `[64,32]`), and the keys whose values differ across
 * runs are reported (`name` and `description` are ignored).
 */

/** Top-level config keys that never count as a difference. */
export const IGNORED_KEYS: readonly string[] = ['name', 'description'];
export const SEED_KEY = 'runtime.seed';

function formatConfigValue(v: unknown): string {
  if (v === undefined) return '';
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

/**
 * Flattens a config to dotted key paths. Objects nest with `.`, lists of objects with `[i]` (as
 * `--set` writes them); lists of plain values, numbers, booleans and null are kept as JSON text.
 */
export function flattenConfig(value: unknown, prefix = '', out: Record<string, string> = {}): Record<string, string> {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 0 && prefix) out[prefix] = '{}';
    for (const [k, v] of entries) flattenConfig(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (Array.isArray(value) && value.some((v) => v !== null && typeof v === 'object')) {
    value.forEach((v, i) => flattenConfig(v, `${prefix}[${i}]`, out));
  } else {
    out[prefix] = formatConfigValue(value);
  }
  return out;
}

/** Keys (first-seen order) whose values differ across the flattened configs; a missing key counts as a value. */
export function configDiff(flats: readonly Record<string, string>[], ignore: readonly string[] = IGNORED_KEYS): string[] {
  const keys: string[] = [];
  const seen = new Set<string>();
  for (const f of flats) for (const k of Object.keys(f)) if (!seen.has(k)) (seen.add(k), keys.push(k));
  return keys.filter((k) => {
    if (ignore.includes(k)) return false;
    const first = flats[0]?.[k];
    return flats.some((f) => f[k] !== first);
  });
}

/** The distinct values of `key` among runs, in first-seen order (a missing key shown as `(unset)`). */
export function distinctValues(runs: readonly { flat: Record<string, string> }[], key: string): string[] {
  const out: string[] = [];
  for (const r of runs) {
    const v = r.flat[key] ?? '(unset)';
    if (!out.includes(v)) out.push(v);
  }
  return out;
}
