// What every route module receives, and the shape of a handler.
import type { Client } from '@temporalio/client';
import Koa from 'koa';
import type { Context as OpenApiContext } from 'openapi-backend';
import { Sequelize } from 'sequelize';
import { Config } from '../config';
import { BlobStore } from '../lib/blob-store';
import { Logger } from '../lib/logger';
import { Metrics } from '../lib/metrics';
import { AuthContext, Authenticator } from './auth';
import { Contract } from './contract';

export interface AppDeps {
  config: Config;
  sequelize: Sequelize;
  temporal: { client: Client; /** checks the server is reachable (for /ready) */ ping(): Promise<void> };
  blobs: BlobStore;
  metrics: Metrics;
  logger: Logger;
}

export interface RouteDeps extends AppDeps {
  authenticator: Authenticator;
  contract: Contract;
}

export type Handler = (c: OpenApiContext, ctx: Koa.Context) => Promise<void>;
export type Handlers = Record<string, Handler>;

export interface DocketState {
  requestId: string;
  operationId?: string;
  auth?: AuthContext;
  body?: unknown;
}

/** The caller of an authenticated operation (the dispatcher has checked there is one). */
export function caller(ctx: Koa.Context): AuthContext {
  const auth = (ctx.state as DocketState).auth;
  if (!auth) throw new Error('caller() used on a public operation');
  return auth;
}

/** Audit fields for a change made by this request. */
export function auditContext(ctx: Koa.Context) {
  const auth = caller(ctx);
  return { tenantId: auth.tenant.id, actor: auth.actor, requestId: (ctx.state as DocketState).requestId };
}
