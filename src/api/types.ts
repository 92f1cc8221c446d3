import type { Caller, TokenService } from '../auth/tokens.js';
import type { NetworkManager } from '../managers/types.js';
import type { HealthReport } from './health.js';
import type { Metrics } from './metrics.js';

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
