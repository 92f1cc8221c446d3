import type { Caller, TokenService } from '../auth/tokens.js';
import type { NetworkManager } from '../managers/manager.js';
import type { Metrics } from './metrics.js';

/** The last reconcile as the host layer reports it (src/host's ReconcileReport fits). */
export interface ReconcileSummary {
  kind: string;
  finishedAt: Date;
  durationMs: number;
  changes: readonly string[];
  errors: readonly string[];
}

export interface HealthReport {
  database: 'ok' | 'unreachable';
  /** Why the database is unreachable: logged, never shown (/healthz needs no token). */
  problem?: string;
  /** Null until the first reconcile has finished (or on a service without a host layer). */
  reconcile: ReconcileSummary | null;
}

/** Structured log lines (the service's logger): an event name and its fields. */
export type ApiLog = (event: string, fields?: Record<string, unknown>) => void;

/** What the API needs from the rest of the service. */
export interface ApiDeps {
  manager: NetworkManager;
  tokens: Pick<TokenService, 'verify'>;
  health: () => Promise<HealthReport> | HealthReport;
  metrics: Metrics;
  log: ApiLog;
  /** `[api] max_body_bytes`: larger bodies are refused with 413 (default 65536). */
  maxBodyBytes?: number;
}

/** What the middlewares leave on ctx.state for the handlers. */
export interface ApiState {
  /** The verified caller (set by the auth middleware on every authenticated route). */
  auth?: Caller;
  /** The project_id of a `/v2.1/{project_id}/...` URL, when the URL has one. */
  urlProjectId?: string;
}
