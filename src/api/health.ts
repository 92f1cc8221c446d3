import type Router from '@koa/router';
import { type Database, ping } from '../db/connection.js';
import type { Metrics } from './metrics.js';
import type { ApiLog, ApiState, HealthReport, ReconcileSummary } from './types.js';

export interface HealthCheckOptions {
  db: Database;
  lastReconcile?: () => ReconcileSummary | undefined;
  /** A ping slower than this counts as unreachable (default 2 s). */
  timeoutMs?: number;
}

/** `health` for the API: pings the database, and reports the last reconcile. */
export function healthCheck(options: HealthCheckOptions): () => Promise<HealthReport> {
  const timeoutMs = options.timeoutMs ?? 2000;
  return async () => {
    const reconcile = options.lastReconcile?.() ?? null;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        ping(options.db),
        new Promise((_resolve, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
          timer.unref();
        }),
      ]);
      return { database: 'ok', reconcile };
    } catch (error) {
      return { database: 'unreachable', problem: error instanceof Error ? error.message : String(error), reconcile };
    } finally {
      clearTimeout(timer);
    }
  };
}

/** Lists in the health body are capped: a first reconcile may change hundreds of things. */
const SHOWN = 50;

function reconcileView(summary: ReconcileSummary | null) {
  if (summary === null) return null;
  return {
    kind: summary.kind,
    finished_at: summary.finishedAt.toISOString(),
    duration_ms: Math.round(summary.durationMs),
    change_count: summary.changes.length,
    changes: summary.changes.slice(0, SHOWN),
    error_count: summary.errors.length,
    errors: summary.errors.slice(0, SHOWN),
  };
}

export interface HealthRouteDeps {
  health: () => Promise<HealthReport> | HealthReport;
  metrics: Metrics;
  log: ApiLog;
}

/**
 * /healthz and /metrics, without a token: they are for a load balancer and a local
 * Prometheus scraper. Bind `[api] host` to a private address when they must not be
 * seen from further away. /healthz is 200 while the database answers (status
 * "degraded" when the last reconcile had errors), 503 when it does not.
 */
export function healthRoutes(router: Router<ApiState>, deps: HealthRouteDeps): void {
  router.get('/healthz', async (ctx) => {
    let report: HealthReport;
    try {
      report = await deps.health();
    } catch (error) {
      report = { database: 'unreachable', problem: error instanceof Error ? error.message : String(error), reconcile: null };
    }
    if (report.problem !== undefined) deps.log('api.health_problem', { database: report.database, problem: report.problem });
    const healthy = report.database === 'ok';
    const status = !healthy ? 'unavailable' : report.reconcile !== null && report.reconcile.errors.length > 0 ? 'degraded' : 'ok';
    ctx.status = healthy ? 200 : 503;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status, database: report.database, reconcile: reconcileView(report.reconcile) };
  });

  router.get('/metrics', async (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.type = deps.metrics.contentType;
    ctx.body = await deps.metrics.render();
  });
}
