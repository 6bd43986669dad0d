// What every route module receives, and the shape of a handler: one per operation of openapi.yaml, its input
// typed from the contract (api/generated/openapi.d.ts).
import type { Client } from '@temporalio/client';
import Koa from 'koa';
import type { Caller, CommandDeps } from '../domains/command';
import { Logger } from '../lib/logger';
import { AuthContext, Authenticator } from './auth';
import { Contract } from './contract';
import type { operations } from './generated/openapi';

/** What the API is built from: what the domains' commands need, plus the readiness check and the log. */
export interface AppDeps extends CommandDeps {
  temporal: { client: Client; /** checks the server is reachable (for /ready) */ ping(): Promise<void> };
  logger: Logger;
}

export interface RouteDeps extends AppDeps {
  authenticator: Authenticator;
  contract: Contract;
}

export type OperationId = keyof operations;

/** A parameter group the contract declares (`never` when it declares none: an empty object then). */
type Declared<T> = [NonNullable<T>] extends [never] ? Record<string, never> : NonNullable<T>;

/** The body as the API reads it (api/app.ts readBody): parsed JSON or form fields, raw text, or nothing (streamed). */
type BodyOf<C> = C extends { 'application/json': infer J } ? J
  : C extends { 'application/x-www-form-urlencoded': infer F } ? F
  : C extends { 'text/plain': unknown } ? string
  : undefined;

type RequestBodyOf<O> = O extends { requestBody: { content: infer C } } ? BodyOf<C>
  : O extends { requestBody?: { content: infer C } } ? BodyOf<C> | undefined
  : undefined;

/**
 * An operation's input, validated against openapi.yaml before the handler runs: path parameters, query
 * parameters (numbers and booleans already converted) and the body.
 */
export interface Input<K extends OperationId> {
  params: Declared<operations[K]['parameters']['path']>;
  query: Declared<operations[K]['parameters']['query']>;
  body: RequestBodyOf<operations[K]>;
}

export type Handler<K extends OperationId> = (input: Input<K>, ctx: Koa.Context) => Promise<void>;

/** One handler per operation: an operation of openapi.yaml without one does not compile (api/app.ts). */
export type Handlers = { [K in OperationId]: Handler<K> };

/** What a route module answers: handlers for some operations (`satisfies RouteHandlers` types their input). */
export type RouteHandlers = Partial<Handlers>;

/** Any operation's handler, as the dispatcher calls it. */
export type AnyHandler = (input: { params: Record<string, unknown>; query: Record<string, unknown>; body: unknown }, ctx: Koa.Context) => Promise<void>;

export interface DocketState {
  requestId: string;
  operationId?: string;
  auth?: AuthContext;
  body?: unknown;
  /** On operations a signed link authorises: counts one use of `token` once its signature verifies (429 past the limit). */
  countLinkUse?: (token: string) => void;
}

/** What a link operation's handler passes as `beforeLookup`: counts this use of the link (see DocketState.countLinkUse). */
export const linkUse = (ctx: Koa.Context, token: string) => () => (ctx.state as DocketState).countLinkUse?.(token);

/** The caller of an authenticated operation (the dispatcher has checked there is one). */
export function caller(ctx: Koa.Context): AuthContext {
  const auth = (ctx.state as DocketState).auth;
  if (!auth) throw new Error('caller() used on a public operation');
  return auth;
}

/** The caller of this request, as the domains' commands take it. */
export function commandCaller(ctx: Koa.Context): Caller {
  const auth = caller(ctx);
  return {
    tenantId: auth.tenant.id, userId: auth.user.id, roles: auth.roles, permissions: auth.permissions, actor: auth.actor,
    requestId: (ctx.state as DocketState).requestId,
  };
}
