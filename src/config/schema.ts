/**
 * A small declarative schema language. One description of the config gives three things:
 * validation with precise messages, filled-in defaults, and the JSON Schema that editors use.
 */

import { checkWork, putOwn } from './keys.js';

export type Path = (string | number)[];

interface Base {
  description?: string;
}
export interface NumberSchema extends Base {
  kind: 'number';
  integer?: boolean;
  min?: number;
  max?: number;
  /** Lower bound that the value must exceed (e.g. a learning rate > 0). */
  above?: number;
  /** Accept `.inf` / `-.inf`; without it a number must be finite. */
  infinite?: boolean;
  default?: number;
}
export interface StringSchema extends Base {
  kind: 'string';
  enum?: readonly string[];
  default?: string;
}
export interface BooleanSchema extends Base {
  kind: 'boolean';
  default?: boolean;
}
export interface ArraySchema<I extends Schema = Schema> extends Base {
  kind: 'array';
  items: I;
  minItems?: number;
  default?: unknown[];
}
export type Fields = Record<string, Schema>;
export interface ObjectSchema<F extends Fields = Fields> extends Base {
  kind: 'object';
  fields: F;
  required?: readonly string[];
  /** Keys not in `fields` are kept unchecked (a later step validates them, e.g. model parameters). */
  open?: boolean;
}
/** An open map from user-chosen names (task names, label names) to values of one schema. */
export interface RecordSchema<V extends Schema = Schema> extends Base {
  kind: 'record';
  values: V;
  default?: Record<string, unknown>;
}
/** Either of several shapes, tried in order (e.g. one file or a list of files). */
export interface UnionSchema<O extends readonly Schema[] = readonly Schema[]> extends Base {
  kind: 'union';
  options: O;
  default?: unknown;
}
/** Objects told apart by a tag key (e.g. model `type`), each with its own fields. */
export interface TaggedSchema<T extends string = string, V extends Record<string, ObjectSchema> = Record<string, ObjectSchema>> extends Base {
  kind: 'tagged';
  tag: T;
  variants: V;
  defaultTag?: string;
}
export interface NullableSchema<I extends Schema = Schema> extends Base {
  kind: 'nullable';
  inner: I;
  default?: null;
}

export type Schema =
  | NumberSchema
  | StringSchema
  | BooleanSchema
  | ArraySchema
  | ObjectSchema
  | RecordSchema
  | UnionSchema
  | TaggedSchema
  | NullableSchema;

// ---- inferred types -------------------------------------------------------------------------
// The TypeScript type of a value after validation (defaults filled in), computed from the schema so
// that the config types have one source. Builders below keep the literal facts Infer reads: enum
// values, which keys are required, which have a default.

type Simplify<T> = { [K in keyof T]: T[K] } & {};

/** Whether validation always fills the value in (a default, an object built from its fields, a default tag). */
type AlwaysPresent<S> = S extends { kind: 'object' }
  ? true
  : S extends { kind: 'tagged'; defaultTag: string }
    ? true
    : S extends { default: infer D }
      ? [D] extends [undefined]
        ? false
        : true
      : false;

type RequiredKeys<S> = S extends { required: readonly (infer R)[] } ? R : never;
type PresentKeys<F, R> = { [K in keyof F]: K extends R ? K : AlwaysPresent<F[K]> extends true ? K : never }[keyof F];

type InferFields<F, R, Open> = Simplify<
  { [K in PresentKeys<F, R>]: Infer<F[K]> } & { [K in Exclude<keyof F, PresentKeys<F, R>>]?: Infer<F[K]> } & (Open extends true
      ? { [key: string]: unknown }
      : unknown)
>;
type InferObject<S> = S extends { fields: infer F } ? InferFields<F, RequiredKeys<S>, S extends { open: true } ? true : false> : never;

export type Infer<S> = [Schema] extends [S] // the wide Schema type (a field of an untyped schema): nothing to infer
  ? unknown
  : S extends { kind: 'number' }
  ? number
  : S extends { kind: 'string'; enum: readonly (infer E)[] }
    ? E
    : S extends { kind: 'string' }
      ? string
      : S extends { kind: 'boolean' }
        ? boolean
        : S extends { kind: 'nullable'; inner: infer I }
          ? Infer<I> | null
          : S extends { kind: 'array'; items: infer I }
            ? Infer<I>[]
            : S extends { kind: 'record'; values: infer V }
              ? Record<string, Infer<V>>
              : S extends { kind: 'union'; options: infer O extends readonly unknown[] }
                ? Infer<O[number]>
                : S extends { kind: 'tagged'; tag: infer T extends string; variants: infer V }
                  ? { [K in keyof V & string]: Simplify<{ [P in T]: K } & InferObject<V[K]>> }[keyof V & string]
                  : S extends { kind: 'object' }
                    ? InferObject<S>
                    : unknown;

// ---- builders -------------------------------------------------------------------------------

type Options<S extends Schema, K extends keyof S = never> = Omit<S, 'kind' | K>;

/** A schema node from its fixed part and the caller's options, keeping the options' exact type. */
const node = <const B extends object, O>(base: B, o: O | undefined): B & O => Object.assign({}, base, o);

export const num = <O extends Options<NumberSchema> = {}>(o?: O): NumberSchema & O => node({ kind: 'number' }, o);
export const int = <O extends Options<NumberSchema, 'integer'> = {}>(o?: O): NumberSchema & O => node({ kind: 'number', integer: true }, o);
export const str = <O extends Options<StringSchema, 'enum'> = {}>(o?: O): StringSchema & O => node({ kind: 'string' }, o);
/** A string out of `values`; pass an `as const` tuple (or a literal list) to get a union of literals. */
export const oneOf = <const V extends readonly string[], O extends Options<StringSchema, 'enum'> = {}>(
  values: V,
  o?: O,
): StringSchema & { enum: V } & O => node({ kind: 'string', enum: values }, o);
export const bool = <O extends Options<BooleanSchema> = {}>(o?: O): BooleanSchema & O => node({ kind: 'boolean' }, o);
export const arr = <I extends Schema, O extends Options<ArraySchema, 'items'> = {}>(items: I, o?: O): ArraySchema<I> & O => node({ kind: 'array', items }, o);
export const obj = <F extends Fields, const O extends Omit<Options<ObjectSchema, 'fields'>, 'required'> & { required?: readonly (keyof F & string)[] } = {}>(
  fields: F,
  o?: O,
): ObjectSchema<F> & O => node({ kind: 'object', fields }, o);
export const record = <V extends Schema, O extends Options<RecordSchema, 'values'> = {}>(values: V, o?: O): RecordSchema<V> & O => node({ kind: 'record', values }, o);
export const union = <const Opts extends readonly Schema[], O extends Options<UnionSchema, 'options'> = {}>(options: Opts, o?: O): UnionSchema<Opts> & O => node({ kind: 'union', options }, o);
export const tagged = <T extends string, V extends Record<string, ObjectSchema>, O extends Options<TaggedSchema, 'tag' | 'variants'> = {}>(
  tag: T,
  variants: V,
  o?: O,
): TaggedSchema<T, V> & O => node({ kind: 'tagged', tag, variants }, o);
export const nullable = <I extends Schema, O extends Options<NullableSchema, 'inner'> = {}>(inner: I, o?: O): NullableSchema<I> & O => node({ kind: 'nullable', inner }, o);

// ---- validation -----------------------------------------------------------------------------

/**
 * Unknown keys of one mapping reported one by one (with a did-you-mean hint); the rest become one
 * issue, so a file with a million stray keys is checked in time and memory linear in its size.
 */
export const MAX_UNKNOWN_KEYS_PER_MAPPING = 10;

export interface SchemaIssue {
  path: Path;
  message: string;
}

export function formatPath(path: Path): string {
  if (path.length === 0) return '(top level)';
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s === '' ? p : `.${p}`;
  return s;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return `the string ${JSON.stringify(value)}`;
  return `${typeof value} ${String(value)}`;
}

export function expectedText(s: Schema): string {
  switch (s.kind) {
    case 'number':
      return s.integer ? 'an integer' : 'a number';
    case 'string':
      return s.enum ? `one of ${s.enum.map((e) => `\`${e}\``).join(', ')}` : 'a string';
    case 'boolean':
      return 'true or false';
    case 'array':
      return `a list of ${expectedText(s.items).replace(/^an? /, '')}s`;
    case 'object':
    case 'record':
    case 'tagged':
      return 'a mapping';
    case 'union':
      return s.options.map(expectedText).join(' or ');
    case 'nullable':
      return `${expectedText(s.inner)} or null`;
  }
}

/** Levenshtein distance, for "did you mean" hints. */
export function editDistance(a: string, b: string): number {
  const prev = new Array<number>(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(up + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length]!;
}

export function suggest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDist = Infinity;
  for (const c of candidates) {
    checkWork.comparisons++;
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDist) {
      bestDist = d;
      best = c;
    }
  }
  return best !== undefined && bestDist <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Checks `value` against `schema`, returning the value with defaults filled in.
 * Problems are appended to `issues`; the returned value is only meaningful when none were added.
 */
export function validate(schema: Schema, value: unknown, path: Path, issues: SchemaIssue[]): unknown {
  const fail = (message: string): unknown => {
    issues.push({ path, message });
    return value;
  };
  const wrongType = (): unknown => fail(`expected ${expectedText(schema)}, found ${describe(value)}`);

  if (value === undefined && 'default' in schema && schema.default !== undefined) {
    return structuredClone(schema.default);
  }
  switch (schema.kind) {
    case 'number': {
      if (typeof value !== 'number' || Number.isNaN(value)) return wrongType();
      if (!schema.infinite && !Number.isFinite(value)) return fail(`expected a finite number, found ${value}`);
      if (schema.integer && !Number.isInteger(value)) return fail(`expected an integer, found ${value}`);
      if (schema.min !== undefined && value < schema.min) return fail(`expected a value >= ${schema.min}, found ${value}`);
      if (schema.max !== undefined && value > schema.max) return fail(`expected a value <= ${schema.max}, found ${value}`);
      if (schema.above !== undefined && !(value > schema.above)) return fail(`expected a value > ${schema.above}, found ${value}`);
      return value;
    }
    case 'string': {
      if (typeof value !== 'string') return wrongType();
      if (schema.enum && !schema.enum.includes(value)) {
        const hint = suggest(value, schema.enum);
        return fail(`expected ${expectedText(schema)}, found ${JSON.stringify(value)}${hint ? ` (did you mean \`${hint}\`?)` : ''}`);
      }
      return value;
    }
    case 'boolean':
      return typeof value === 'boolean' ? value : wrongType();
    case 'nullable':
      return value === null ? null : validate(schema.inner, value, path, issues);
    case 'array': {
      if (!Array.isArray(value)) return wrongType();
      if (schema.minItems !== undefined && value.length < schema.minItems) {
        return fail(`expected at least ${schema.minItems} item(s), found ${value.length}`);
      }
      return value.map((item, i) => validate(schema.items, item, [...path, i], issues));
    }
    case 'record': {
      if (!isPlainObject(value)) return wrongType();
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) putOwn(out, k, validate(schema.values, v, [...path, k], issues));
      return out;
    }
    case 'object': {
      if (value === undefined) value = {};
      if (!isPlainObject(value)) return wrongType();
      return validateFields(schema, value, path, issues);
    }
    case 'tagged': {
      if (value === undefined && schema.defaultTag) value = {};
      if (!isPlainObject(value)) return wrongType();
      const tagValue = value[schema.tag] ?? schema.defaultTag;
      const names = Object.keys(schema.variants);
      if (typeof tagValue !== 'string' || !Object.hasOwn(schema.variants, tagValue)) {
        issues.push({ path: [...path, schema.tag], message: unknownTagMessage(tagValue, names) });
        return value;
      }
      const variant = schema.variants[tagValue]!;
      const rest = { ...value };
      delete rest[schema.tag];
      return { [schema.tag]: tagValue, ...validateFields(variant, rest, path, issues) };
    }
    case 'union': {
      for (const option of schema.options) {
        const trial: SchemaIssue[] = [];
        const out = validate(option, value, path, trial);
        if (trial.length === 0) return out;
      }
      return wrongType();
    }
  }
}

/**
 * `validate` with the result typed from the schema: the one place where the checked value becomes
 * its inferred type (meaningful only when no issue was added).
 */
export function check<S extends Schema>(schema: S, value: unknown, path: Path, issues: SchemaIssue[]): Infer<S> {
  return validate(schema, value, path, issues) as Infer<S>;
}

/** The message for a tag (e.g. a model type) that names none of the variants, with a did-you-mean hint. */
export function unknownTagMessage(tagValue: unknown, names: readonly string[]): string {
  const hint = typeof tagValue === 'string' ? suggest(tagValue, names) : undefined;
  const found = typeof tagValue === 'string' ? JSON.stringify(tagValue) : describe(tagValue);
  return `expected one of ${names.map((n) => `\`${n}\``).join(', ')}, found ${found}${hint ? ` (did you mean \`${hint}\`?)` : ''}`;
}

function validateFields(
  schema: ObjectSchema,
  value: Record<string, unknown>,
  path: Path,
  issues: SchemaIssue[],
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const known = Object.keys(schema.fields);
  const isField = (key: string) => Object.hasOwn(schema.fields, key);
  if (!schema.open) {
    let unknown = 0;
    let firstOverCap: string | undefined;
    for (const key of Object.keys(value)) {
      if (isField(key)) continue;
      if (++unknown > MAX_UNKNOWN_KEYS_PER_MAPPING) {
        firstOverCap ??= key;
        continue;
      }
      const hint = suggest(key, known);
      issues.push({
        path: [...path, key],
        message: `unknown key \`${key}\`${hint ? ` (did you mean \`${hint}\`?)` : ''}; allowed here: ${known.join(', ')}`,
      });
    }
    if (firstOverCap !== undefined) {
      const more = unknown - MAX_UNKNOWN_KEYS_PER_MAPPING;
      issues.push({ path: [...path, firstOverCap], message: `${more.toLocaleString('en-US')} more unknown key${more > 1 ? 's' : ''} in this mapping, from \`${firstOverCap}\` on; allowed here: ${known.join(', ')}` });
    }
  }
  for (const [key, fieldSchema] of Object.entries(schema.fields)) {
    const v = Object.hasOwn(value, key) ? value[key] : undefined;
    if (v === undefined && schema.required?.includes(key)) {
      issues.push({ path: [...path, key], message: `missing required key \`${key}\` (expected ${expectedText(fieldSchema)})` });
      continue;
    }
    if (v === undefined && !hasDefault(fieldSchema)) continue;
    out[key] = validate(fieldSchema, v, [...path, key], issues);
  }
  if (schema.open) for (const [key, v] of Object.entries(value)) if (!isField(key)) putOwn(out, key, v);
  return out;
}

function hasDefault(s: Schema): boolean {
  if (s.kind === 'object') return true; // objects are filled from their fields' defaults
  if (s.kind === 'tagged') return s.defaultTag !== undefined;
  return 'default' in s && s.default !== undefined;
}
