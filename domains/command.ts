// What every domain's commands receive: their dependencies and who runs them. A command is what a route
// does beyond parsing and presenting; routes, scripts and tests call the same function.
import type { Client } from '@temporalio/client';
import type { Sequelize } from 'sequelize';
import type { Config } from '../config';
import type { Actor, CommandAuthor } from '../lib/audit';
import type { BlobStore } from '../lib/blob-store';
import type { Metrics } from '../lib/metrics';
import type { PermissionSet } from './identity/permissions';

export interface CommandDeps {
  config: Config;
  sequelize: Sequelize;
  temporal: { client: Client };
  blobs: BlobStore;
  metrics: Metrics;
}

/** Who runs a command: the tenant it acts in, the user and what they may do, and what the audit log records. */
export interface Caller {
  tenantId: string;
  userId: string;
  /** The user's role keys (approval templates name roles). */
  roles: string[];
  permissions: PermissionSet;
  /** The credential, as audit events name it. */
  actor: Actor;
  /** The API request that ran the command, if one did. */
  requestId?: string | null;
}

/** Who made a change, as a workflow's input or command carries it to the audit event its activity writes. */
export const commandAuthor = (c: Caller): CommandAuthor => ({ actor: c.actor, requestId: c.requestId ?? null });

/** The audit fields of a change a caller makes. */
export const auditBy = (c: Caller) => ({ tenantId: c.tenantId, ...commandAuthor(c) });

/**
 * Optimistic concurrency: called with the version about to be changed (its row locked), it throws to
 * refuse the change — the API builds it from If-Match (api/conventions.ts), other callers pass none.
 */
export type Precondition = (version: number) => void;
