/**
 * The hosts table (issue 17): each service registers its name, role, tunnel address
 * and version, and heartbeats; a host without a heartbeat for service_down_time is
 * down. The network host of a single-host network at its first use is a service
 * allowed to be one, never a compute-only one, whichever service took the call.
 */
import { describe, expect, it } from 'vitest';
import { heartbeat, listHosts, registerHost } from '../../src/db/hosts.js';
import { Invalid, Unavailable } from '../../src/errors.js';
import { BACKENDS } from '../support/databases.js';
import { Clock, expectRefused, harness, instance, useDatabase } from '../support/managers.js';

describe.each(BACKENDS)('hosts on %s', (backend) => {
  const db = useDatabase(backend);

  const register = (name: string, role: 'network' | 'compute', now: Date, tunnelIp: string | null = '192.0.2.10') =>
    registerHost(db().knex, { name, role, tunnelIp, wakeAddress: null, version: '0.1.0', now });

  it('registers a host once, heartbeats it, and keeps its id and first sight when it registers again', async () => {
    const clock = new Clock();
    await register('net1', 'network', clock.now());
    const [first] = await listHosts(db().knex);
    expect(first).toMatchObject({ name: 'net1', role: 'network', tunnelIp: '192.0.2.10', version: '0.1.0', lastReconcileAt: null });
    expect(first!.lastReconcileErrors).toEqual([]);

    clock.advance(10);
    await heartbeat(db().knex, 'net1', {
      now: clock.now(),
      reconcile: { at: clock.now(), errors: ['network a is not served:\nno uplink', 'b'] },
    });
    clock.advance(10);
    await register('net1', 'compute', clock.now(), '192.0.2.11');
    const [again] = await listHosts(db().knex);
    expect(again).toMatchObject({
      id: first!.id,
      role: 'compute',
      tunnelIp: '192.0.2.11',
      heartbeatAt: clock.now(),
      startedAt: clock.now(),
    });
    // A message's own newline does not split it into two errors.
    expect(again!.lastReconcileErrors).toEqual(['network a is not served: no uplink', 'b']);
    expect((await db().knex('hosts').count({ n: '*' }))[0]).toMatchObject({ n: 1 });
  });

  it('shows a host up while its heartbeat is within service_down_time, and down after it', async () => {
    const clock = new Clock();
    const h = harness(db(), 'flatdhcp', { clock, config: { service_down_time: '30' } });
    await register('compute1', 'compute', clock.now());
    clock.advance(30);
    expect((await h.manager.hosts.list()).map((host) => [host.name, host.state])).toEqual([['compute1', 'up']]);
    clock.advance(1);
    expect((await h.manager.hosts.list()).map((host) => [host.name, host.state])).toEqual([['compute1', 'down']]);
    await heartbeat(db().knex, 'compute1', { now: clock.now() });
    expect((await h.manager.hosts.list({ name: 'compute1' }))[0]?.state).toBe('up');
    expect(await h.manager.hosts.list({ name: 'compute9' })).toEqual([]);
    await expect(h.manager.hosts.list({ name: 'bad_host' })).rejects.toThrow(Invalid);
  });

  it("a network host's service takes a single-host network at its first use, as before", async () => {
    const h = harness(db(), 'flatdhcp');
    const [network] = await h.manager.networks.create({ label: 'a', fixedRangeV4: '10.0.0.0/24' });
    await h.manager.allocation.allocate({ instanceUuid: instance(1), projectId: 'p1', host: 'compute1' });
    expect((await h.manager.networks.get({ uuid: network!.uuid })).host).toBe('nethost');
  });

  it('a compute-only service gives a network at its first use to the longest-registered network host that is up', async () => {
    const clock = new Clock();
    const h = harness(db(), 'flatdhcp', { clock, config: { network_host: 'false', host: 'compute1' } });
    expect(h.manager.hosts.role).toBe('compute');
    await register('net-old', 'network', clock.now());
    await register('net-new', 'network', clock.now());
    await register('compute2', 'compute', clock.now());
    clock.advance(120);
    await heartbeat(db().knex, 'net-new', { now: clock.now() });
    await heartbeat(db().knex, 'compute2', { now: clock.now() });
    // net-old is down now: the only network host up is net-new.
    const [network] = await h.manager.networks.create({ label: 'a', fixedRangeV4: '10.0.0.0/24' });
    await h.manager.allocation.allocate({ instanceUuid: instance(1), projectId: 'p1', host: 'compute1' });
    expect((await h.manager.networks.get({ uuid: network!.uuid })).host).toBe('net-new');
  });

  it('a compute-only service with no network host up refuses the allocation and writes nothing', async () => {
    const clock = new Clock();
    const h = harness(db(), 'flatdhcp', { clock, config: { network_host: 'false', host: 'compute1' } });
    await register('compute1', 'compute', clock.now());
    await register('net1', 'network', clock.now());
    clock.advance(61);
    await h.manager.networks.create({ label: 'lonely', fixedRangeV4: '10.0.0.0/24' });
    await expectRefused(
      db(),
      () => h.manager.allocation.allocate({ instanceUuid: instance(1), projectId: 'p1', host: 'compute1' }),
      Unavailable,
      /^network lonely has no network host and none is up to take it: start a service with network_host = true, or name one with novanet-manage network modify --host$/,
    );
  });

  it('a network that has its network host keeps it, whatever service allocates', async () => {
    const h = harness(db(), 'flatdhcp', { config: { network_host: 'false', host: 'compute1' } });
    const [network] = await h.manager.networks.create({ label: 'a', fixedRangeV4: '10.0.0.0/24' });
    await h.manager.networks.modify({ uuid: network!.uuid }, { host: 'net7' });
    await h.manager.allocation.allocate({ instanceUuid: instance(1), projectId: 'p1', host: 'compute1' });
    expect((await h.manager.networks.get({ uuid: network!.uuid })).host).toBe('net7');
  });
});
