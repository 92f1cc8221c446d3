/** Nova's os-fixed-ips through HTTP on each backend: show, reserve, unreserve. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { InstanceNetworkInfo } from '../../src/managers/views.js';
import { type Api, expectFault, startApi, uuidOf } from '../support/api.js';
import { BACKENDS } from '../support/databases.js';
import { snapshot } from '../support/dbState.js';
import { fixedRow, useDatabase } from '../support/managers.js';

describe.each(BACKENDS)('os-fixed-ips on %s', (backend) => {
  const db = useDatabase(backend);
  let api: Api;
  let admin: string;

  beforeEach(async () => {
    api = await startApi(db());
    await api.manager.networks.create({ label: 'private', fixedRangeV4: '10.0.0.0/24' });
    admin = await api.token('ops', 'admin');
  });

  afterEach(async () => {
    await api.close();
  });

  it('shows a free address and one held by an instance (hostname and host of the instance)', async () => {
    const free = await api.call('GET', '/v2.1/os-fixed-ips/10.0.0.100', { token: admin });
    expect(free.status).toBe(200);
    expect(free.json).toEqual({ fixed_ip: { address: '10.0.0.100', cidr: '10.0.0.0/24', host: null, hostname: null, reserved: false } });
    const info: InstanceNetworkInfo = await api.manager.allocation.allocate({
      instanceUuid: uuidOf(1),
      projectId: 'p1',
      host: 'compute1',
      hostname: 'web1',
    });
    const address = info.network_info[0]!.network.subnets[0]!.ips[0]!.address;
    const held = await api.call('GET', `/v2.1/p1/os-fixed-ips/${address}`, { token: admin });
    expect(held.json).toEqual({ fixed_ip: { address, cidr: '10.0.0.0/24', host: 'compute1', hostname: 'web1', reserved: false } });
    // The network address is reserved from the start.
    expect((await api.call('GET', '/v2.1/os-fixed-ips/10.0.0.0', { token: admin })).json).toMatchObject({ fixed_ip: { reserved: true } });
  });

  it('answers 404 for an address of no network and 400 for a malformed one', async () => {
    expectFault(await api.call('GET', '/v2.1/os-fixed-ips/10.9.9.9', { token: admin }), 404, 'fixed IP 10.9.9.9 not found in any network');
    expectFault(
      await api.call('GET', '/v2.1/os-fixed-ips/10.0.0.256', { token: admin }),
      400,
      'address must be an IP address, got "10.0.0.256"',
    );
    expectFault(await api.call('GET', '/v2.1/os-fixed-ips/banana', { token: admin }), 400, /^address must be an IP address/);
  });

  it('reserves and unreserves (202, empty body)', async () => {
    const reserved = await api.call('POST', '/v2.1/os-fixed-ips/10.0.0.100/action', { token: admin, body: { reserve: null } });
    expect(reserved.status).toBe(202);
    expect(reserved.text).toBe('');
    expect((await fixedRow(db(), '10.0.0.100')).reserved).toBe(true);
    expect(api.h.host.kinds()).toContain('network-updated');
    expect((await api.call('POST', '/v2.1/os-fixed-ips/10.0.0.100/action', { token: admin, body: { unreserve: null } })).status).toBe(202);
    expect((await fixedRow(db(), '10.0.0.100')).reserved).toBe(false);
  });

  it('refuses what the manager refuses and malformed actions, changing nothing', async () => {
    const info = await api.manager.allocation.allocate({ instanceUuid: uuidOf(2), projectId: 'p1', host: 'compute1' });
    const held = info.network_info[0]!.network.subnets[0]!.ips[0]!.address;
    const before = await snapshot(db());
    const action = (address: string, body: unknown) => api.call('POST', `/v2.1/os-fixed-ips/${address}/action`, { token: admin, body });
    expectFault(await action(held, { reserve: null }), 409, new RegExp(`is in use by instance ${uuidOf(2)}`));
    expectFault(await action('10.0.0.1', { unreserve: null }), 409, /is the gateway of network 10\.0\.0\.0\/24/);
    expectFault(await action('10.9.9.9', { reserve: null }), 404, /10\.9\.9\.9 not found/);
    expectFault(await action('nope', { reserve: null }), 400, /^address must be an IP address/);
    expectFault(
      await action('10.0.0.100', { hold: null }),
      400,
      'There is no such action: "hold"; os-fixed-ips actions are reserve, unreserve',
    );
    expectFault(await action('10.0.0.100', { reserve: true }), 400, 'reserve must be null, got a boolean');
    expectFault(await action('10.0.0.100', 'reserve'), 400, /must be an object naming one action, got a string/);
    expect(await snapshot(db())).toEqual(before);
  });
});
