/** The REST API, as the service composes it (src/cli/network). */
export { createApp, listen, type RunningApi } from './app.js';
export { healthCheck } from './health.js';
export { createMetrics, type Metrics, type ReconcileObservation } from './metrics.js';
export type { ApiDeps, ApiLog, HealthReport, ReconcileSummary } from './types.js';
