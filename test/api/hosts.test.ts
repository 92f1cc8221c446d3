/**
 * `GET /v2.1/os-novanet/hosts` (issue 17): the cluster's services as `host list` shows
 * them, for admins only (Nova's os-services was admin-only too).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { heartbeat, registerHost } from '../../src/db/hosts.js';
import { type Api, expectFault, startApi } from '../support/api.js';
import { BACKENDS } from '../support/databases.js';
import { useDatabase } from '../support/managers.js';

describe.each(BACKENDS)('hosts API on %s', (backend) => {
  const db = useDatabase(backend);
  let api: Api;

  beforeEach(async () => {
    api = await startApi(db());
  });

  afterEach(async () => {
    await api.close();
  });

  it('lists every host with its role, state, heartbeat and last reconcile', async () => {
    const now = api.h.clock.now();
    const long = new Date(now.getTime() - 3600_000);
    await registerHost(db().knex, { name: 'net1', role: 'network', tunnelIp: '192.0.2.10', wakeAddress: null, version: '0.1.0', now });
    await heartbeat(db().knex, 'net1', { now, reconcile: { at: now, errors: ['network a (10.0.0.0/24) is not served: x'] } });
    await registerHost(db().knex, {
      name: 'compute1',
      role: 'compute',
      tunnelIp: '192.0.2.21',
      wakeAddress: null,
      version: '0.1.0',
      now: long,
    });
    const reply = await api.call('GET', '/v2.1/os-novanet/hosts', { token: await api.token('ops', 'admin') });
    expect(reply.status, reply.text).toBe(200);
    const { hosts } = reply.json as { hosts: Record<string, unknown>[] };
    expect(hosts.map((host) => [host.host, host.role, host.state, host.tunnel_ip])).toEqual([
      ['compute1', 'compute', 'down', '192.0.2.21'],
      ['net1', 'network', 'up', '192.0.2.10'],
    ]);
    expect(hosts[0]).toMatchObject({ heartbeat_at: long.toISOString(), last_reconcile_at: null, last_reconcile_errors: [] });
    expect(hosts[1]).toMatchObject({ version: '0.1.0', last_reconcile_errors: ['network a (10.0.0.0/24) is not served: x'] });
  });

  it("is refused to a member token with Nova's policy fault, and without a token with 401", async () => {
    expectFault(
      await api.call('GET', '/v2.1/os-novanet/hosts', { token: await api.token('p1') }),
      403,
      "Policy doesn't allow os_compute_api:os-novanet:hosts to be performed.",
    );
    expectFault(await api.call('GET', '/v2.1/os-novanet/hosts'), 401);
  });
});
