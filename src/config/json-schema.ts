/** The JSON Schema of a schema of the DSL (schema.ts), for editor validation and completion. */
import type { ObjectSchema, Schema } from './schema.js';

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
  const out: Record<string, unknown> = { type: 'object', properties, additionalProperties: s.open === true, ...common };
  if (s.required?.length) out.required = [...s.required];
  return out;
}
