// The contract, loaded once: the definition object, its operations, and the permission catalogue.
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { PROJECT_ROOT } from '../lib/paths';

export const CONTRACT_PATH = path.join(PROJECT_ROOT, 'openapi.yaml');

export interface OperationInfo {
  operationId: string;
  method: string;
  path: string;
  permission?: string;
  idempotent: boolean;
  public: boolean;
  /** Counted per link (`x-link-limit`): public operations that do work for whoever holds a signed link. */
  perLink: boolean;
  /** How the body is read, from the request body's media types: JSON unless the contract says otherwise. */
  body: BodyKind;
}

/** `streamed`: read by the handler itself (uploads); `form`: HTML form posts; `text`: raw text parts. */
export type BodyKind = 'json' | 'form' | 'text' | 'streamed';

function bodyKind(requestBody: { content?: Record<string, unknown> } | undefined): BodyKind {
  const types = Object.keys(requestBody?.content ?? {});
  if (types.includes('multipart/form-data') || types.includes('application/octet-stream')) return 'streamed';
  if (types.includes('application/x-www-form-urlencoded')) return 'form';
  if (types.length > 0 && types.every((t) => t.startsWith('text/'))) return 'text';
  return 'json';
}

export interface PermissionInfo {
  name: string;
  description: string;
  operations: string[];
}

export interface Contract {
  raw: string;
  definition: Record<string, unknown>;
  operations: OperationInfo[];
  permissions: PermissionInfo[];
}

const METHODS = ['get', 'put', 'post', 'patch', 'delete', 'head', 'options'];

export function loadContract(file = CONTRACT_PATH): Contract {
  const raw = fs.readFileSync(file, 'utf8');
  const definition = YAML.parse(raw) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  const operations: OperationInfo[] = [];
  for (const [p, item] of Object.entries<Record<string, any>>(definition.paths)) { // eslint-disable-line @typescript-eslint/no-explicit-any
    for (const m of METHODS) {
      const op = item[m];
      if (!op) continue;
      operations.push({
        operationId: op.operationId, method: m.toUpperCase(), path: p, permission: op['x-permission'],
        idempotent: op['x-idempotent'] === true, public: Array.isArray(op.security) && op.security.length === 0,
        perLink: op['x-link-limit'] === true, body: bodyKind(op.requestBody),
      });
    }
  }
  const catalogue = (definition['x-permissions'] ?? []) as { name: string; description: string }[];
  const permissions = catalogue.map((p) => ({
    ...p,
    operations: operations.filter((o) => o.permission === p.name).map((o) => o.operationId),
  }));
  return { raw, definition, operations, permissions };
}
