// The event catalogue, read from the contract (x-event-types and the …EventData schemas): one source for what
// GET /v1/event-types serves, what the type filter accepts and what the tests validate payloads against.
import type { EventType } from '../../lib/events';

type JsonSchema = Record<string, unknown>;

export interface EventTypeInfo {
  type: EventType;
  description: string;
  subjectType: string;
  /** JSON Schema (2020-12) of the events' `data`. */
  schema: JsonSchema;
}

/**
 * An OpenAPI 3.0 schema as plain JSON Schema 2020-12, for receivers' validators: `$ref`s inlined (the data schemas
 * are small and not recursive), `nullable` as a `null` type, `example` as `examples`.
 */
function toJsonSchema(s: JsonSchema, schemas: Record<string, JsonSchema>): JsonSchema {
  if (typeof s.$ref === 'string') return toJsonSchema(schemas[s.$ref.replace('#/components/schemas/', '')], schemas);
  const out: JsonSchema = {};
  for (const [k, v] of Object.entries(s)) {
    if (k === 'nullable') continue;
    if (k === 'example') out.examples = [v];
    else if (k === 'properties') out.properties = Object.fromEntries(Object.entries(v as Record<string, JsonSchema>).map(([p, ps]) => [p, toJsonSchema(ps, schemas)]));
    else if (k === 'items') out.items = toJsonSchema(v as JsonSchema, schemas);
    else out[k] = v;
  }
  if (s.nullable === true) {
    out.type = [s.type, 'null'];
    if (Array.isArray(s.enum)) out.enum = [...(s.enum as unknown[]), null];
  }
  return out;
}

/** Every event type of the contract, with its payload's JSON Schema. */
export function eventCatalogue(definition: Record<string, unknown>): EventTypeInfo[] {
  const schemas = (definition.components as { schemas: Record<string, JsonSchema> }).schemas;
  const entries = definition['x-event-types'] as { type: EventType; description: string; subjectType: string; schema: string }[];
  return entries.map((e) => ({
    type: e.type, description: e.description, subjectType: e.subjectType,
    schema: { $schema: 'https://json-schema.org/draft/2020-12/schema', title: e.schema, ...toJsonSchema(schemas[e.schema], schemas) },
  }));
}

/** The catalogue's types a `type` filter names: itself, or every type starting with a `prefix.*`'s prefix. */
export function typesMatching(catalogue: readonly { type: string }[], pattern: string): string[] {
  const prefix = pattern.endsWith('.*') ? pattern.slice(0, -1) : null;
  return catalogue.map((t) => t.type).filter((t) => (prefix ? t.startsWith(prefix) : t === pattern));
}
