/**
 * Safe keys: what keeps a config from ever writing an object's prototype, and the counter of work
 * that tests use to check that config checking stays linear in the size of the file.
 */

/**
 * Keys that would reach an object's prototype when used as a property path. They are refused in
 * YAML keys and `--set` paths (config/load.ts), and the schema checker (schema.ts) writes user keys as own
 * properties only, so no config can ever change Object.prototype.
 */
export const FORBIDDEN_KEYS: readonly string[] = ['__proto__', 'constructor', 'prototype'];
export const isForbiddenKey = (k: string | number): boolean => typeof k === 'string' && FORBIDDEN_KEYS.includes(k);

/** Writes `key` as an own, enumerable property (a `__proto__` key stays data, never the prototype). */
export function putOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
  else target[key] = value;
}

/**
 * Work done by the checks whose cost could grow with the number of keys (did-you-mean comparisons,
 * keys scanned to find a line). Tests read it to check that checking stays linear in the file size.
 */
export const checkWork = { comparisons: 0, scanned: 0 };
