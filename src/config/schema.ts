/**
 * A small declarative schema language. One description of the config gives three things:
 * validation with precise messages, filled-in defaults, and the JSON Schema that editors use.
 */

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
export interface ArraySchema extends Base {
  kind: 'array';
  items: Schema;
  minItems?: number;
  default?: unknown[];
}
export interface ObjectSchema extends Base {
  kind: 'object';
  fields: Record<string, Schema>;
  required?: readonly string[];
}
/** An open map from user-chosen names (task names, label names) to values of one schema. */
export interface RecordSchema extends Base {
  kind: 'record';
  values: Schema;
  default?: Record<string, unknown>;
}
/** Either of several shapes, tried in order (e.g. one file or a list of files). */
export interface UnionSchema extends Base {
  kind: 'union';
  options: Schema[];
  default?: unknown;
}
/** Objects told apart by a tag key (e.g. model `type`), each with its own fields. */
export interface TaggedSchema extends Base {
  kind: 'tagged';
  tag: string;
  variants: Record<string, ObjectSchema>;
  defaultTag?: string;
}
export interface NullableSchema extends Base {
  kind: 'nullable';
  inner: Schema;
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

// ---- builders -------------------------------------------------------------------------------

export const num = (o: Omit<NumberSchema, 'kind'> = {}): NumberSchema => ({ kind: 'number', ...o });
export const int = (o: Omit<NumberSchema, 'kind' | 'integer'> = {}): NumberSchema => ({ kind: 'number', integer: true, ...o });
export const str = (o: Omit<StringSchema, 'kind'> = {}): StringSchema => ({ kind: 'string', ...o });
export const oneOf = (values: readonly string[], o: Omit<StringSchema, 'kind' | 'enum'> = {}): StringSchema => ({
  kind: 'string',
  enum: values,
  ...o,
});
export const bool = (o: Omit<BooleanSchema, 'kind'> = {}): BooleanSchema => ({ kind: 'boolean', ...o });
export const arr = (items: Schema, o: Omit<ArraySchema, 'kind' | 'items'> = {}): ArraySchema => ({ kind: 'array', items, ...o });
export const obj = (
  fields: Record<string, Schema>,
  o: Omit<ObjectSchema, 'kind' | 'fields'> = {},
): ObjectSchema => ({ kind: 'object', fields, ...o });
export const record = (values: Schema, o: Omit<RecordSchema, 'kind' | 'values'> = {}): RecordSchema => ({
  kind: 'record',
  values,
  ...o,
});
export const union = (options: Schema[], o: Omit<UnionSchema, 'kind' | 'options'> = {}): UnionSchema => ({
  kind: 'union',
  options,
  ...o,
});
export const tagged = (
  tag: string,
  variants: Record<string, ObjectSchema>,
  o: Omit<TaggedSchema, 'kind' | 'tag' | 'variants'> = {},
): TaggedSchema => ({ kind: 'tagged', tag, variants, ...o });
export const nullable = (inner: Schema, o: Omit<NullableSchema, 'kind' | 'inner'> = {}): NullableSchema => ({
  kind: 'nullable',
  inner,
  ...o,
});

// ---- validation -----------------------------------------------------------------------------

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
      for (const [k, v] of Object.entries(value)) out[k] = validate(schema.values, v, [...path, k], issues);
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
      if (typeof tagValue !== 'string' || !(tagValue in schema.variants)) {
        const hint = typeof tagValue === 'string' ? suggest(tagValue, names) : undefined;
        issues.push({
          path: [...path, schema.tag],
          message: `expected one of ${names.map((n) => `\`${n}\``).join(', ')}, found ${typeof tagValue === 'string' ? JSON.stringify(tagValue) : describe(tagValue)}${hint ? ` (did you mean \`${hint}\`?)` : ''}`,
        });
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

function validateFields(
  schema: ObjectSchema,
  value: Record<string, unknown>,
  path: Path,
  issues: SchemaIssue[],
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const known = Object.keys(schema.fields);
  for (const key of Object.keys(value)) {
    if (!(key in schema.fields)) {
      const hint = suggest(key, known);
      issues.push({
        path: [...path, key],
        message: `unknown key \`${key}\`${hint ? ` (did you mean \`${hint}\`?)` : ''}; allowed here: ${known.join(', ')}`,
      });
    }
  }
  for (const [key, fieldSchema] of Object.entries(schema.fields)) {
    const v = value[key];
    if (v === undefined && schema.required?.includes(key)) {
      issues.push({ path: [...path, key], message: `missing required key \`${key}\` (expected ${expectedText(fieldSchema)})` });
      continue;
    }
    if (v === undefined && !hasDefault(fieldSchema)) continue;
    out[key] = validate(fieldSchema, v, [...path, key], issues);
  }
  return out;
}

function hasDefault(s: Schema): boolean {
  if (s.kind === 'object') return true; // objects are filled from their fields' defaults
  if (s.kind === 'tagged') return s.defaultTag !== undefined;
  return 'default' in s && s.default !== undefined;
}

// ---- JSON Schema ----------------------------------------------------------------------------

export function toJsonSchema(s: Schema): Record<string, unknown> {
  const common: Record<string, unknown> = {};
  if (s.description) common.description = s.description;
  if ('default' in s && s.default !== undefined) common.default = s.default;
  switch (s.kind) {
    case 'number': {
      const out: Record<string, unknown> = { type: s.integer ? 'integer' : 'number', ...common };
      if (s.min !== undefined) out.minimum = s.min;
      if (s.max !== undefined) out.maximum = s.max;
      if (s.above !== undefined) out.exclusiveMinimum = s.above;
      return out;
    }
    case 'string':
      return s.enum ? { type: 'string', enum: [...s.enum], ...common } : { type: 'string', ...common };
    case 'boolean':
      return { type: 'boolean', ...common };
    case 'nullable':
      return { anyOf: [toJsonSchema(s.inner), { type: 'null' }], ...common };
    case 'array': {
      const out: Record<string, unknown> = { type: 'array', items: toJsonSchema(s.items), ...common };
      if (s.minItems !== undefined) out.minItems = s.minItems;
      return out;
    }
    case 'record':
      return { type: 'object', additionalProperties: toJsonSchema(s.values), ...common };
    case 'object':
      return objectJson(s, common);
    case 'union':
      return { anyOf: s.options.map(toJsonSchema), ...common };
    case 'tagged':
      return {
        ...common,
        oneOf: Object.entries(s.variants).map(([name, v]) => {
          const o = objectJson(v, v.description ? { description: v.description } : {});
          (o.properties as Record<string, unknown>)[s.tag] = { const: name };
          if (s.defaultTag !== name) o.required = [...((o.required as string[]) ?? []), s.tag];
          return o;
        }),
      };
  }
}

function objectJson(s: ObjectSchema, common: Record<string, unknown>): Record<string, unknown> {
  const properties: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s.fields)) properties[k] = toJsonSchema(v);
  const out: Record<string, unknown> = { type: 'object', properties, additionalProperties: false, ...common };
  if (s.required?.length) out.required = [...s.required];
  return out;
}
