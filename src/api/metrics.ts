import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** One reconcile as the host layer reports it (src/host's ReconcileReport fits as is). */
export interface ReconcileObservation {
  kind: string;
  durationMs: number;
  /** What was changed (drift repaired, or the changes asked for): a list or a count. */
  changes: readonly unknown[] | number;
  errors: readonly unknown[] | number;
}

export interface RequestObservation {
  method: string;
  /** The route pattern (`/v2.1/os-networks/:id`), never the raw path: labels stay few. */
  route: string;
  status: number;
  durationMs: number;
}

/**
 * The service's Prometheus metrics. Other parts report through these few calls and
 * never touch the metric objects; /metrics renders them.
 */
export interface Metrics {
  recordReconcile(report: ReconcileObservation): void;
  recordRequest(request: RequestObservation): void;
  /** Fixed IPs of one network (by label or CIDR) that instances could get, and those they hold. */
  setFixedIpUsage(network: string, free: number, used: number): void;
  /** Drops a deleted network's series. */
  forgetNetwork(network: string): void;
  /** Live DHCP leases on this host. */
  setLeases(count: number): void;
  /** The Prometheus text exposition of every metric. */
  render(): Promise<string>;
  readonly contentType: string;
}

export interface MetricsOptions {
  /** Node's process metrics (CPU, memory, event loop lag, GC); on by default. */
  processMetrics?: boolean;
}

const count = (value: readonly unknown[] | number): number => (typeof value === 'number' ? value : value.length);

/** Seconds, from a few ms (a partial apply) to a minute (a full reconcile of a large host). */
const RECONCILE_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const REQUEST_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** A registry of its own per call, so tests and several apps in one process do not share counters. */
export function createMetrics(options: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  const registers = [registry];
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry });

  const reconciles = new Counter({
    name: 'novanet_reconciles_total',
    help: 'Reconciles of the host run, by kind (full, partial).',
    labelNames: ['kind'],
    registers,
  });
  const failed = new Counter({
    name: 'novanet_reconcile_failures_total',
    help: 'Reconciles that ended with at least one error.',
    labelNames: ['kind'],
    registers,
  });
  const repairs = new Counter({
    name: 'novanet_reconcile_changes_total',
    help: 'Kernel changes made by reconciles (drift repaired on full ones).',
    labelNames: ['kind'],
    registers,
  });
  const errors = new Counter({
    name: 'novanet_reconcile_errors_total',
    help: 'Errors met by reconciles.',
    labelNames: ['kind'],
    registers,
  });
  const duration = new Histogram({
    name: 'novanet_reconcile_duration_seconds',
    help: 'Time to reconcile and apply the changes.',
    labelNames: ['kind'],
    buckets: RECONCILE_BUCKETS,
    registers,
  });
  const last = new Gauge({
    name: 'novanet_reconcile_last_timestamp_seconds',
    help: 'When the last reconcile of each kind finished (Unix time).',
    labelNames: ['kind'],
    registers,
  });
  const fixed = new Gauge({
    name: 'novanet_fixed_ips',
    help: 'Fixed IPs per network: free (could be handed out) and used (held by instances).',
    labelNames: ['network', 'state'],
    registers,
  });
  const leases = new Gauge({ name: 'novanet_dhcp_leases', help: 'Live DHCP leases of the networks this host serves.', registers });
  const requests = new Counter({
    name: 'novanet_api_requests_total',
    help: 'API requests answered, by method, route and status.',
    labelNames: ['method', 'route', 'status'],
    registers,
  });
  const latency = new Histogram({
    name: 'novanet_api_request_duration_seconds',
    help: 'Time to answer an API request.',
    labelNames: ['method', 'route'],
    buckets: REQUEST_BUCKETS,
    registers,
  });

  return {
    recordReconcile(report) {
      const kind = report.kind;
      reconciles.inc({ kind });
      repairs.inc({ kind }, count(report.changes));
      const errorCount = count(report.errors);
      errors.inc({ kind }, errorCount);
      if (errorCount > 0) failed.inc({ kind });
      duration.observe({ kind }, report.durationMs / 1000);
      last.set({ kind }, Date.now() / 1000);
    },
    recordRequest({ method, route, status, durationMs }) {
      requests.inc({ method, route, status: String(status) });
      latency.observe({ method, route }, durationMs / 1000);
    },
    setFixedIpUsage(network, free, used) {
      fixed.set({ network, state: 'free' }, free);
      fixed.set({ network, state: 'used' }, used);
    },
    forgetNetwork(network) {
      fixed.remove({ network, state: 'free' });
      fixed.remove({ network, state: 'used' });
    },
    setLeases(value) {
      leases.set(value);
    },
    render: () => registry.metrics(),
    contentType: registry.contentType,
  };
}
