/** /healthz, /metrics and the metrics registry the rest of the service reports to. */
import { afterEach, describe, expect, it } from 'vitest';
import { healthCheck } from '../../src/api/health.js';
import { createMetrics } from '../../src/api/metrics.js';
import type { HealthReport } from '../../src/api/types.js';
import { openDatabase } from '../../src/db/connection.js';
import { type Api, expectFault, startApi } from '../support/api.js';
import { BACKENDS, freshDatabase } from '../support/databases.js';
import { useDatabase } from '../support/managers.js';

const REPORT = {
  kind: 'full',
  finishedAt: new Date('2024-01-01T12:00:00.000Z'),
  durationMs: 12.34,
  changes: ['address 10.0.0.1/24 on br100', 'rules nova-network-POSTROUTING'],
  errors: [] as string[],
};

describe('/healthz and /metrics', () => {
  const db = useDatabase('sqlite');
  let api: Api | undefined;

  afterEach(async () => {
    await api?.close();
    api = undefined;
  });

  const start = async (health: () => Promise<HealthReport> | HealthReport) => {
    api = await startApi(db(), { health });
    return api;
  };

  it('/healthz needs no token: 200 with the database and the last reconcile', async () => {
    const reply = await (await start(() => ({ database: 'ok', reconcile: REPORT }))).call('GET', '/healthz');
    expect(reply.status).toBe(200);
    expect(reply.headers.get('cache-control')).toBe('no-store');
    expect(reply.json).toEqual({
      status: 'ok',
      database: 'ok',
      reconcile: {
        kind: 'full',
        finished_at: '2024-01-01T12:00:00.000Z',
        duration_ms: 12,
        change_count: 2,
        changes: ['address 10.0.0.1/24 on br100', 'rules nova-network-POSTROUTING'],
        error_count: 0,
        errors: [],
      },
    });
  });

  it('/healthz before any reconcile, and "degraded" (still 200) when the last one had errors', async () => {
    const first = await start(() => ({ database: 'ok', reconcile: null }));
    expect((await first.call('GET', '/healthz')).json).toEqual({ status: 'ok', database: 'ok', reconcile: null });
    await first.close();
    const second = await start(async () => ({ database: 'ok', reconcile: { ...REPORT, errors: ['dnsmasq for br100: exit 2'] } }));
    const reply = await second.call('GET', '/healthz');
    expect(reply.status).toBe(200);
    expect(reply.json).toMatchObject({ status: 'degraded', reconcile: { error_count: 1, errors: ['dnsmasq for br100: exit 2'] } });
  });

  it('/healthz is 503 when the database is unreachable (the reason is logged, not shown), or when the check itself fails', async () => {
    const down = await start(() => ({ database: 'unreachable', problem: "Access denied for user 'novanet'@'10.0.0.5'", reconcile: null }));
    const reply = await down.call('GET', '/healthz');
    expect(reply.status).toBe(503);
    expect(reply.json).toEqual({ status: 'unavailable', database: 'unreachable', reconcile: null });
    expect(reply.text).not.toContain('Access denied');
    expect(down.logs.find((line) => line.event === 'api.health_problem')?.fields.problem).toContain('Access denied');
    await down.close();
    const broken = await start(() => {
      throw new Error('health check bug');
    });
    expect((await broken.call('GET', '/healthz')).status).toBe(503);
  });

  it('/metrics needs no token, is Prometheus text, counts requests by route pattern and is not logged', async () => {
    const running = await start(() => ({ database: 'ok', reconcile: null }));
    const token = await running.token('ops', 'admin');
    await running.call('GET', '/v2.1/os-networks', { token });
    await running.call('GET', '/v2.1/p1/os-networks/00000000-0000-4000-8000-000000000001', { token });
    await running.call('GET', '/v2.1/os-networks');
    running.metrics.recordReconcile({ kind: 'full', durationMs: 40, changes: ['a', 'b', 'c'], errors: [] });
    running.metrics.recordReconcile({ kind: 'partial', durationMs: 3, changes: 1, errors: ['x'] });
    running.metrics.setFixedIpUsage('private', 250, 3);
    running.metrics.setLeases(3);
    running.logs.length = 0;
    const reply = await running.call('GET', '/metrics');
    expect(reply.status).toBe(200);
    expect(reply.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = reply.text;
    expect(text).toContain('novanet_api_requests_total{method="GET",route="/v2.1/os-networks",status="200"} 1');
    expect(text).toContain('novanet_api_requests_total{method="GET",route="/v2.1/os-networks",status="401"} 1');
    expect(text).toContain('novanet_api_requests_total{method="GET",route="/v2.1/os-networks/:id",status="404"} 1');
    expect(text).toMatch(/novanet_api_request_duration_seconds_count\{method="GET",route="\/v2\.1\/os-networks"\} 2/);
    expect(text).toContain('novanet_reconciles_total{kind="full"} 1');
    expect(text).toContain('novanet_reconcile_changes_total{kind="full"} 3');
    expect(text).toContain('novanet_reconcile_errors_total{kind="partial"} 1');
    expect(text).toContain('novanet_reconcile_failures_total{kind="partial"} 1');
    expect(text).toContain('novanet_reconcile_duration_seconds_bucket{le="0.05",kind="full"} 1');
    expect(text).toMatch(/novanet_reconcile_last_timestamp_seconds\{kind="full"\} \d+/);
    expect(text).toContain('novanet_fixed_ips{network="private",state="free"} 250');
    expect(text).toContain('novanet_fixed_ips{network="private",state="used"} 3');
    expect(text).toContain('novanet_dhcp_leases 3');
    expect(running.logs.filter((line) => line.event === 'api.request')).toEqual([]);
  });
});

describe('the metrics registry', () => {
  it('forgets a deleted network and keeps registries apart', async () => {
    const one = createMetrics({ processMetrics: false });
    const two = createMetrics({ processMetrics: false });
    one.setFixedIpUsage('a', 1, 2);
    one.setFixedIpUsage('b', 3, 4);
    one.forgetNetwork('a');
    const text = await one.render();
    expect(text).not.toContain('network="a"');
    expect(text).toContain('novanet_fixed_ips{network="b",state="free"} 3');
    expect(await two.render()).not.toContain('network="b"');
  });

  it("includes Node's process metrics unless asked not to", async () => {
    expect(await createMetrics().render()).toContain('process_cpu_seconds_total');
    expect(await createMetrics({ processMetrics: false }).render()).not.toContain('process_cpu_seconds_total');
  });
});

describe.each(BACKENDS)('healthCheck on %s', (backend) => {
  it('reports the database ok while it answers, unreachable once it does not', async () => {
    const opened = await freshDatabase(backend);
    const check = healthCheck({ db: opened.db, lastReconcile: () => REPORT });
    expect(await check()).toEqual({ database: 'ok', reconcile: REPORT });
    await opened.close();
    const after = await check();
    expect(after.database).toBe('unreachable');
    expect(after.problem).toEqual(expect.any(String));
  });

  it('counts a ping slower than the timeout as unreachable', async () => {
    const never = openDatabase('sqlite://:memory:');
    const slow = { ...never, knex: { raw: () => new Promise(() => undefined) } } as unknown as typeof never;
    const report = await healthCheck({ db: slow, timeoutMs: 50 })();
    expect(report).toEqual({ database: 'unreachable', problem: 'no answer within 50 ms', reconcile: null });
    await never.close();
  });
});

describe('fault shape of /healthz neighbours', () => {
  const db = useDatabase('sqlite');

  it('an unknown path beside them is still a fault', async () => {
    const api = await startApi(db());
    try {
      expectFault(await api.call('GET', '/healthz/extra'), 404);
    } finally {
      await api.close();
    }
  });
});
