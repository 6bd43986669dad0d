// Checks every response a test sees against openapi.yaml, strictly: the status is declared for the
// operation (`default` does not count), the content type is one it declares, a JSON body matches its
// schema with every object closed (no field the contract does not name), and headers match.
import Ajv, { ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import type OpenAPIBackend from 'openapi-backend';

interface SeenResponse {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

type Schema = Record<string, unknown>;
interface DeclaredHeader { required?: boolean; schema?: Schema }
interface DeclaredResponse { content?: Record<string, { schema?: Schema }>; headers?: Record<string, DeclaredHeader> }

const JSON_TYPES = ['application/json', 'application/problem+json'];
/**
 * Headers a client acts on. A response that sends one must declare it, so the contract tells clients
 * everything they may rely on; a declared one is validated against its schema, and a required one
 * must be sent.
 */
const CLIENT_HEADERS = ['location', 'etag', 'retry-after', 'idempotent-replayed', 'content-disposition'];

/** Thrown (and recorded) when a response breaks the contract; `waitFor` rethrows it at once. */
export class ContractViolation extends Error {
  override readonly name = 'ContractViolation';
}

export function isContractViolation(err: unknown): err is ContractViolation {
  return err instanceof Error && err.name === 'ContractViolation';
}

/** Violations seen since the last `takeViolations()`: a test that swallowed one still fails (see contract-guard.ts). */
const recorded: ContractViolation[] = [];
export function takeViolations(): ContractViolation[] {
  return recorded.splice(0);
}

/**
 * A copy of `schema` with every object closed: `additionalProperties: false` where the contract left
 * it open and named properties, and `allOf` parts merged into one closed object (closing each part on
 * its own would refuse the other parts' fields). Free-form objects (no `properties`) and explicit
 * `additionalProperties` stay as written. The dereferenced definition shares schema objects (and the
 * server validates requests with them), so nothing is changed in place.
 */
export function closeSchema(schema: unknown, memo = new Map<object, Schema>()): unknown {
  if (!schema || typeof schema !== 'object' || Array.isArray(schema)) return schema;
  const src = schema as Schema;
  const seen = memo.get(src);
  if (seen) return seen;
  const out: Schema = {};
  memo.set(src, out);
  const parts = src.allOf ? flattenAllOf(src) : undefined;
  const base: Schema = parts ? mergeParts(src, parts) : src;
  for (const [k, v] of Object.entries(base)) {
    if (k === 'properties') out.properties = Object.fromEntries(Object.entries(v as Schema).map(([p, s]) => [p, closeSchema(s, memo)]));
    else if (k === 'items' || k === 'not' || (k === 'additionalProperties' && typeof v === 'object')) out[k] = closeSchema(v, memo);
    else if (k === 'oneOf' || k === 'anyOf') out[k] = (v as unknown[]).map((s) => closeSchema(s, memo));
    else out[k] = v;
  }
  if (out.properties && out.additionalProperties === undefined) out.additionalProperties = false;
  return out;
}

function flattenAllOf(s: Schema): Schema[] {
  return (s.allOf as Schema[]).flatMap((p) => (p.allOf ? [...flattenAllOf(p), { ...p, allOf: undefined }] : [p]));
}

function mergeParts(src: Schema, parts: Schema[]): Schema {
  const merged: Schema = { ...src, type: 'object', properties: {}, required: [] };
  delete merged.allOf;
  for (const p of [src, ...parts]) {
    Object.assign(merged.properties as Schema, p.properties ?? {});
    (merged.required as string[]).push(...((p.required as string[]) ?? []));
    // One open part keeps the whole open: the contract said so.
    if (p.additionalProperties !== undefined && p.additionalProperties !== false) merged.additionalProperties = p.additionalProperties;
  }
  merged.required = [...new Set(merged.required as string[])];
  return merged;
}

function mediaMatches(declared: string, actual: string): boolean {
  if (declared === '*/*' || declared === actual) return true;
  return declared.endsWith('/*') && actual.startsWith(declared.slice(0, -1));
}

export class ContractChecker {
  private readonly ajv = new Ajv({ strict: false, allErrors: true });
  /** Header values are strings on the wire: coerced to the declared type before they are checked. */
  private readonly headerAjv = new Ajv({ strict: false, coerceTypes: true });
  private readonly cache = new Map<string, ValidateFunction>();
  private readonly headerCache = new Map<object, ValidateFunction>();

  constructor(private readonly api: OpenAPIBackend) {
    addFormats(this.ajv);
    addFormats(this.headerAjv);
  }

  /** Throws a ContractViolation with a readable reason when the response breaks the contract. */
  check(method: string, url: string, res: SeenResponse): void {
    try {
      this.checkResponse(method, url, res);
    } catch (err) {
      const violation = new ContractViolation(`contract: ${(err as Error).message}`);
      recorded.push(violation);
      throw violation;
    }
  }

  private checkResponse(method: string, url: string, res: SeenResponse): void {
    const path = url.split('?')[0];
    const op = this.api.matchOperation({ method, path, headers: {} });
    const ctype = (res.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    if (!op) {
      // Unknown routes and methods answer problem+json; there is no operation to hold them to.
      if ((res.status === 404 || res.status === 405) && ctype === 'application/problem+json') return;
      throw new Error(`${method} ${url} → ${res.status} (${ctype || 'no content type'}), but the contract has no such operation`);
    }
    const responses = (op.responses ?? {}) as Record<string, DeclaredResponse>;
    // `default` stays in openapi.yaml for clients (any other error is problem+json), but a test holds
    // the code to what it declares: an undeclared status is a contract gap or a bug.
    const declared = responses[String(res.status)] ?? responses[`${String(res.status)[0]}XX`];
    const where = `${op.operationId} ${res.status}`;
    if (!declared) throw new Error(`${op.operationId} answered ${res.status}, which openapi.yaml does not declare (\`default\` does not count)`);
    this.checkHeaders(where, declared, res.headers);

    const content = declared.content ?? {};
    const types = Object.keys(content);
    if (types.length === 0) {
      if (ctype && !(res.status === 304 || res.status === 204)) throw new Error(`${where} declares no body, but one came as ${ctype}`);
      return;
    }
    const media = types.find((t) => mediaMatches(t.toLowerCase(), ctype));
    if (!media) throw new Error(`${where} came as ${ctype || 'no content type'}; openapi.yaml declares ${types.join(', ')}`);
    if (!JSON_TYPES.includes(ctype)) return;
    const schema = content[media].schema;
    if (!schema) throw new Error(`${where}: openapi.yaml declares no ${ctype} schema`);
    const key = `${where} ${ctype}`;
    let validate = this.cache.get(key);
    if (!validate) {
      validate = this.ajv.compile(closeSchema(schema) as Schema);
      this.cache.set(key, validate);
    }
    if (!validate(res.body)) {
      throw new Error(`${key} body breaks the contract: ${this.ajv.errorsText(validate.errors)}\n${JSON.stringify(res.body).slice(0, 500)}`);
    }
  }

  private checkHeaders(where: string, declared: DeclaredResponse, headers: Record<string, string>): void {
    const byName = new Map(Object.entries(declared.headers ?? {}).map(([name, h]) => [name.toLowerCase(), h]));
    for (const name of CLIENT_HEADERS) {
      if (headers[name] !== undefined && !byName.has(name)) throw new Error(`${where} sends ${name}: ${headers[name]}, which openapi.yaml does not declare for it`);
    }
    for (const [name, h] of byName) {
      const value = headers[name];
      if (value === undefined) {
        if (h.required) throw new Error(`${where} lacks the ${name} header openapi.yaml requires`);
        continue;
      }
      if (!h.schema) continue;
      let validate = this.headerCache.get(h.schema);
      if (!validate) {
        validate = this.headerAjv.compile({ type: 'object', properties: { v: h.schema } });
        this.headerCache.set(h.schema, validate);
      }
      if (!validate({ v: value })) throw new Error(`${where} header ${name}: ${value} breaks the contract: ${this.headerAjv.errorsText(validate.errors)}`);
    }
  }
}
