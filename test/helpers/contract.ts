// Checks every response against openapi.yaml: the status is declared, the body matches its schema.
import Ajv, { ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import type OpenAPIBackend from 'openapi-backend';

interface SeenResponse {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

const JSON_TYPES = ['application/json', 'application/problem+json'];

export class ContractChecker {
  private readonly ajv = new Ajv({ strict: false, allErrors: true });
  private readonly cache = new Map<string, ValidateFunction>();

  constructor(private readonly api: OpenAPIBackend) {
    addFormats(this.ajv);
  }

  /** Throws with a readable reason when the response breaks the contract. */
  check(method: string, url: string, res: SeenResponse): void {
    const path = url.split('?')[0];
    const op = this.api.matchOperation({ method, path, headers: {} });
    const ctype = (res.headers['content-type'] ?? '').split(';')[0].trim();
    const responses = (op?.responses ?? {}) as Record<string, { content?: Record<string, { schema?: object }> }>;
    const declared = responses[String(res.status)] ?? responses.default;
    if (res.status >= 400 && ctype !== 'application/problem+json' && !declared?.content?.[ctype]) {
      throw new Error(`${method} ${url} → ${res.status} with content-type ${ctype}, expected application/problem+json`);
    }
    if (!op) {
      if (res.status === 404 || res.status === 405) return; // unknown routes answer problem+json (checked above)
      throw new Error(`${method} ${url} → ${res.status}, but the contract has no such operation`);
    }
    if (!declared) throw new Error(`${op.operationId} answered ${res.status}, which openapi.yaml does not declare`);
    if (!JSON_TYPES.includes(ctype) || res.status === 204 || res.status === 304) return;
    const schema = declared.content?.[ctype]?.schema;
    if (!schema) throw new Error(`${op.operationId} ${res.status}: openapi.yaml declares no ${ctype} body`);
    const key = `${op.operationId} ${res.status} ${ctype}`;
    let validate = this.cache.get(key);
    if (!validate) {
      validate = this.ajv.compile(schema);
      this.cache.set(key, validate);
    }
    if (!validate(res.body)) {
      throw new Error(`${key} body breaks the contract: ${this.ajv.errorsText(validate.errors)}\n${JSON.stringify(res.body).slice(0, 500)}`);
    }
  }
}
