import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Router from '@koa/router';
import Koa, { type Middleware } from 'koa';
import { Invalid } from '../errors.js';
import { projectIdField } from '../fields.js';
import { authenticate } from './auth.js';
import { DEFAULT_MAX_BODY_BYTES } from './body.js';
import { computeRoutes } from './compute.js';
import { faults, HttpFault } from './errors.js';
import { fixedIpRoutes } from './fixedIps.js';
import { floatingIpRoutes, floatingIpServerActions } from './floatingIps.js';
import { healthRoutes } from './health.js';
import { hostRoutes } from './hosts.js';
import type { Metrics } from './metrics.js';
import { networkRoutes } from './networks.js';
import { securityGroupRoutes, securityGroupServerActions } from './securityGroups.js';
import { serverRoutes } from './servers.js';
import type { ApiDeps, ApiLog, ApiState } from './types.js';

/** The first path segments that are resources, not project ids. */
const RESOURCES = new Set([
  'os-networks',
  'os-fixed-ips',
  'os-novanet',
  'os-floating-ips',
  'os-floating-ip-pools',
  'os-floating-ips-bulk',
  'servers',
]);

/** Blanks at either end, or control characters anywhere, in one decoded path segment. */
const UNCLEAR_SEGMENT = /^\s|\s$|\p{Cc}/u;

/**
 * No resource has a name or id that starts or ends with a blank or holds a control
 * character: a segment like that is refused, never trimmed into another one (`%20` +
 * an address would otherwise name the address).
 */
function refuseUnclearSegments(path: string): void {
  for (const segment of path.split('/')) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      throw new Invalid(`Malformed request URL: ${JSON.stringify(segment.slice(0, 60))} is not valid percent-encoding`);
    }
    if (UNCLEAR_SEGMENT.test(decoded)) {
      throw new Invalid(
        `Malformed request URL: the segment ${JSON.stringify(decoded.slice(0, 60))} starts or ends with a blank or holds a control character`,
      );
    }
  }
}

/**
 * Nova's URL forms, brought to one: `/v2/...` is an alias of `/v2.1/...`, and
 * `/v2.1/{project_id}/RESOURCE/...` is `/v2.1/RESOURCE/...` with the project_id kept
 * on ctx.state for the auth middleware. Routes are declared once, under `/v2.1`.
 */
export const canonicalPath: Middleware<ApiState> = async (ctx, next) => {
  refuseUnclearSegments(ctx.path);
  const match = /^\/v2(?:\.1)?(?=\/|$)/.exec(ctx.path);
  if (match) {
    const segments = ctx.path.slice(match[0].length).split('/');
    // segments[0] is '' (the path went on with '/'); [1] a resource or a project id.
    const first = segments[1];
    if (first !== undefined && first !== '' && !RESOURCES.has(first) && segments[2] !== undefined && RESOURCES.has(segments[2])) {
      // Its percent-encoding was checked with every other segment's.
      const project = decodeURIComponent(first);
      // Checked here, once, for every route: a read would otherwise answer 200 (an
      // empty list) for a project id no token or write could ever have.
      ctx.state.urlProjectId = projectIdField(project, "Malformed request URL: the URL's project_id");
      segments.splice(1, 1);
    }
    ctx.path = `/v2.1${segments.join('/')}`;
  }
  await next();
};

/**
 * The route pattern a request matched (`/v2.1/os-networks/:id`), for metrics labels;
 * found again here because a request refused before its handler ran (401) has none
 * on ctx.
 */
function routeOf(routers: Router<ApiState>[], path: string, method: string): string {
  for (const router of routers) {
    const layer = router.match(path, method).pathAndMethod.find((candidate) => candidate.methods.length > 0);
    if (layer) return String(layer.path);
  }
  return 'unmatched';
}

/** One log line and one metrics sample per request (/metrics itself is not logged). */
function requestLog(log: ApiLog, metrics: Metrics, routers: Router<ApiState>[]): Middleware {
  return async (ctx, next) => {
    const started = performance.now();
    try {
      await next();
    } finally {
      const ms = Math.round((performance.now() - started) * 10) / 10;
      const path = ctx.originalUrl.split('?')[0] ?? ctx.originalUrl;
      const route = routeOf(routers, ctx.path, ctx.method);
      metrics.recordRequest({ method: ctx.method, route, status: ctx.status, durationMs: ms });
      if (path !== '/metrics') log('api.request', { method: ctx.method, path, status: ctx.status, ms });
    }
  };
}

/**
 * Reached only when no route answered: 405 with `Allow` when the path exists with
 * other methods (OPTIONS gets the list), 404 itemNotFound otherwise.
 */
function unmatched(routers: Router<ApiState>[]): Middleware {
  return async (ctx) => {
    const allowed = new Set<string>();
    for (const router of routers) {
      for (const layer of router.match(ctx.path, ctx.method).path) for (const method of layer.methods) allowed.add(method);
    }
    if (allowed.size === 0) throw new HttpFault(404, `No resource at ${ctx.originalUrl.split('?')[0]?.slice(0, 100)}`);
    const methods = [...allowed].join(', ');
    if (ctx.method === 'OPTIONS') {
      ctx.set('Allow', methods);
      ctx.status = 204;
      return;
    }
    throw new HttpFault(405, `The method ${ctx.method.slice(0, 16)} is not allowed on this resource; allowed: ${methods}`, {
      Allow: methods,
    });
  };
}

/**
 * The REST API as a Koa app: Nova's os-networks, os-fixed-ips, floating IPs (pools,
 * allocation, bulk, the server actions) and a minimal /servers, novanet's
 * compute-host endpoints, /healthz and /metrics. Serve it with `listen` (or
 * `app.callback()` in tests).
 */
export function createApp(deps: ApiDeps): Koa<ApiState> {
  const maxBodyBytes = deps.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const app = new Koa<ApiState>();
  // Errors are answered by `faults`; what still escapes (a socket error) is logged.
  app.silent = true;
  app.on('error', (error: Error) => deps.log('api.socket_error', { error: error.message }));

  const open = new Router<ApiState>();
  healthRoutes(open, deps);

  const api = new Router<ApiState>();
  // Router-level: runs only when a route matched, so 404/405 need no token.
  api.use(authenticate(deps.tokens));
  const routeDeps = { manager: deps.manager, maxBodyBytes };
  computeRoutes(api, routeDeps);
  networkRoutes(api, routeDeps);
  fixedIpRoutes(api, routeDeps);
  hostRoutes(api, routeDeps);
  floatingIpRoutes(api, routeDeps);
  securityGroupRoutes(api, routeDeps);
  serverRoutes(api, { ...routeDeps, actions: { ...floatingIpServerActions(deps.manager), ...securityGroupServerActions(deps.manager) } });

  app.use(requestLog(deps.log, deps.metrics, [open, api]));
  app.use(faults(deps.log));
  app.use(canonicalPath);
  app.use(open.routes());
  app.use(api.routes());
  app.use(unmatched([open, api]));
  return app;
}

export interface RunningApi {
  server: Server;
  /** `http://HOST:PORT`, with the port actually bound (port 0 picks a free one). */
  url: string;
  /** Stops accepting, ends idle keep-alive connections, waits for requests in flight. */
  close(): Promise<void>;
}

/** Serves `app` on `[api] host` and `[api] port`. */
export function listen(app: Koa<ApiState>, options: { host: string; port: number }): Promise<RunningApi> {
  const server = createServer(app.callback());
  // A client that sends headers slowly must not hold a connection for long.
  server.headersTimeout = 20_000;
  server.requestTimeout = 60_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      const { address, port } = server.address() as AddressInfo;
      const host = address.includes(':') ? `[${address}]` : address;
      resolve({
        server,
        url: `http://${host}:${port}`,
        close: () =>
          new Promise<void>((done, fail) => {
            server.close((error) => (error ? fail(error) : done()));
            server.closeIdleConnections();
          }),
      });
    });
  });
}
