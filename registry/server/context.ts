import type { Logger } from 'pino';
import type { Registry } from '../repository/index.js';
import type { RegistryMetrics } from './metrics.js';
import type { Context, RouteMatch } from './state.js';

export type { Context, Next, RegistryState, RouteMatch, RouteName } from './state.js';

/** What every handler needs, built once per server. */
export interface RegistryDeps {
  /** The repository services every handler works through (local, cached, mirrored: handlers cannot tell). */
  registry: Registry;
  metrics: RegistryMetrics;
  logger: Logger;
  /** Largest manifest accepted on PUT, in bytes. */
  maxManifestBytes: number;
  /** An upload body that sends nothing for this many milliseconds is cut (the session keeps what arrived); unbounded when absent. */
  bodyIdleTimeoutMs?: number | undefined;
}

export type Handler = (ctx: Context, match: RouteMatch) => Promise<void>;
export type MethodTable = Partial<Record<'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE', Handler>>;

/** The route a request matched (set by dispatch; read by auth, read-only, metrics and logs). */
export function routeOf(ctx: Context): RouteMatch | undefined {
  return ctx.state.route;
}

/** A status with an empty body (202/201/204 answers carry their meaning in headers). */
export function answerEmpty(ctx: Context, status: number): void {
  ctx.status = status;
  ctx.body = status === 204 ? null : '';
  ctx.status = status;
  ctx.remove('Content-Type');
}
