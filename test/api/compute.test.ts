/**
 * The compute-host endpoints (`/v2.1/os-novanet/instances`): allocate, read back and
 * deallocate an instance's networking through HTTP, against a real manager on each
 * backend; success and error paths, and what each caller may see.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { recordBuilt, registerHost } from '../../src/db/hosts.js';
import type { InstanceNetworkInfo } from '../../src/managers/views.js';
import { type Api, expectFault, startApi, uuidOf } from '../support/api.js';
import { BACKENDS } from '../support/databases.js';
import { snapshot } from '../support/dbState.js';
import { useDatabase } from '../support/managers.js';

describe.each(BACKENDS)('compute-host API on %s', (backend) => {
  const db = useDatabase(backend);
  let api: Api;
  let admin: string;
  let p1: string;
  let p2: string;
  let network: { uuid: string; id: number };

  beforeEach(async () => {
    api = await startApi(db());
    const [created] = await api.manager.networks.create({ label: 'private', fixedRangeV4: '10.0.0.0/24', dns1: '10.0.0.53' });
    network = created!;
    api.h.host.clear();
    admin = await api.token('ops', 'admin');
    p1 = await api.token('p1');
    p2 = await api.token('p2');
  });

  afterEach(async () => {
    await api.close();
  });

  const allocateBody = (n: number, extra: Record<string, unknown> = {}) => ({
    instance: { uuid: uuidOf(n), project_id: 'p1', host: 'compute1', hostname: `vm${n}`, ...extra },
  });

  it('allocates an instance and returns nova network_info as the manager builds it', async () => {
    const reply = await api.call('POST', '/v2.1/os-novanet/instances', { token: p1, body: allocateBody(1) });
    expect(reply.status).toBe(200);
    expect(reply.headers.get('content-type')).toMatch(/^application\/json/);
    const info = reply.json as InstanceNetworkInfo;
    expect(info).toEqual(await api.manager.allocation.networkInfo(uuidOf(1)));
    expect(info.instance_uuid).toBe(uuidOf(1));
    expect(info.project_id).toBe('p1');
    expect(info.network_info).toHaveLength(1);
    const [vif] = info.network_info;
    expect(vif!.network).toMatchObject({ id: network.uuid, label: 'private', bridge: 'br100' });
    expect(vif!.network.meta.should_create_bridge).toBe(true);
    expect(vif!.network.subnets[0]!.ips[0]!.address).toMatch(/^10\.0\.0\.\d+$/);
    expect(vif!.network.subnets[0]!.dns.map((dns) => dns.address)).toEqual(['10.0.0.53']);
    expect(api.h.host.kinds()).toContain('network-updated');
  });

  it('allocates the requested network and fixed IP', async () => {
    const reply = await api.call('POST', '/v2.1/os-novanet/instances', {
      token: admin,
      body: allocateBody(2, { requested_networks: [{ uuid: network.uuid, fixed_ip: '10.0.0.77' }] }),
    });
    expect(reply.status).toBe(200);
    expect((reply.json as InstanceNetworkInfo).network_info[0]!.network.subnets[0]!.ips[0]!.address).toBe('10.0.0.77');
  });

  it('is idempotent: a second allocate for the same instance returns the same network_info', async () => {
    const first = await api.call('POST', '/v2.1/os-novanet/instances', { token: p1, body: allocateBody(3) });
    const before = await snapshot(db());
    const again = await api.call('POST', '/v2.1/os-novanet/instances', { token: p1, body: allocateBody(3) });
    expect(again.status).toBe(200);
    expect(again.json).toEqual(first.json);
    expect(await snapshot(db())).toEqual(before);
  });

  it("refuses to hand out another project's instance under a repeated uuid (409, nothing shown)", async () => {
    await api.call('POST', '/v2.1/os-novanet/instances', { token: p1, body: allocateBody(4) });
    const before = await snapshot(db());
    const reply = await api.call('POST', '/v2.1/os-novanet/instances', {
      token: p2,
      body: { instance: { ...allocateBody(4).instance, project_id: 'p2' } },
    });
    expectFault(reply, 409, `instance ${uuidOf(4)} already has networking allocated for another project`);
    expect(reply.text).not.toContain('10.0.0.');
    expect(await snapshot(db())).toEqual(before);
  });

  it('reads back an allocation: GET returns the same network_info; unknown instances are 404', async () => {
    const allocated = await api.call('POST', '/v2.1/os-novanet/instances', { token: p1, body: allocateBody(5) });
    const read = await api.call('GET', `/v2.1/os-novanet/instances/${uuidOf(5)}`, { token: p1 });
    expect(read.status).toBe(200);
    // The same, and each VIF says whether its host has built the bridge: no service of compute1 has (issue 17).
    const expected = allocated.json as InstanceNetworkInfo;
    expect(read.json).toEqual({ ...expected, network_info: expected.network_info.map((vif) => ({ ...vif, active: false })) });
    await registerHost(db().knex, {
      name: 'compute1',
      role: 'compute',
      tunnelIp: null,
      wakeAddress: null,
      version: '0.1.0',
      now: new Date(),
    });
    await recordBuilt(db().knex, 'compute1', [network.uuid]);
    const built = (await api.call('GET', `/v2.1/os-novanet/instances/${uuidOf(5)}`, { token: p1 })).json as InstanceNetworkInfo;
    expect(built.network_info.map((vif) => vif.active)).toEqual([true]);
    expectFault(
      await api.call('GET', `/v2.1/os-novanet/instances/${uuidOf(6)}`, { token: p1 }),
      404,
      `instance ${uuidOf(6)} has no network allocated`,
    );
    expectFault(
      await api.call('GET', '/v2.1/os-novanet/instances/not-a-uuid', { token: admin }),
      400,
      'instance_uuid must be a UUID, got "not-a-uuid"',
    );
  });

  it('deallocates: 204, the VIF is gone, the address waits for its DHCP release; a second DELETE is 404', async () => {
    const allocated = await api.call('POST', '/v2.1/os-novanet/instances', { token: p1, body: allocateBody(7) });
    const address = (allocated.json as InstanceNetworkInfo).network_info[0]!.network.subnets[0]!.ips[0]!.address;
    await api.manager.leases.lease(address);
    api.h.host.clear();
    const reply = await api.call('DELETE', `/v2.1/os-novanet/instances/${uuidOf(7)}`, { token: p1 });
    expect(reply.status).toBe(204);
    expect(reply.text).toBe('');
    expect((await api.manager.allocation.networkInfo(uuidOf(7))).network_info).toEqual([]);
    expect(api.h.host.kinds()).toEqual(['release-lease', 'dhcp-host']);
    const row = (await db().knex('fixed_ips').where('address', address).first()) as Record<string, unknown>;
    expect(row.instance_uuid).toBe(uuidOf(7));
    expect(Number(row.allocated)).toBe(0);
    expectFault(await api.call('DELETE', `/v2.1/os-novanet/instances/${uuidOf(7)}`, { token: p1 }), 404);
  });

  it("hides another project's instance from a member (404 on GET and DELETE, nothing changed)", async () => {
    await api.call('POST', '/v2.1/os-novanet/instances', { token: p1, body: allocateBody(8) });
    const before = await snapshot(db());
    expectFault(
      await api.call('GET', `/v2.1/os-novanet/instances/${uuidOf(8)}`, { token: p2 }),
      404,
      `instance ${uuidOf(8)} has no network allocated`,
    );
    expectFault(await api.call('DELETE', `/v2.1/os-novanet/instances/${uuidOf(8)}`, { token: p2 }), 404);
    expect(await snapshot(db())).toEqual(before);
    // The admin sees and removes it.
    expect((await api.call('GET', `/v2.1/os-novanet/instances/${uuidOf(8)}`, { token: admin })).status).toBe(200);
    expect((await api.call('DELETE', `/v2.1/os-novanet/instances/${uuidOf(8)}`, { token: admin })).status).toBe(204);
  });

  it('refuses a member allocating for another project (403, nothing written)', async () => {
    const before = await snapshot(db());
    const reply = await api.call('POST', '/v2.1/os-novanet/instances', { token: p2, body: allocateBody(9) });
    expectFault(reply, 403, 'a member token of project p2 cannot allocate networking for project p1');
    expect(await snapshot(db())).toEqual(before);
  });

  it('maps the manager refusals: unknown requested network 404, address in use 409, no more addresses 409', async () => {
    const refusals: [extra: Record<string, unknown>, status: number, message: string | RegExp][] = [
      [{ requested_networks: [{ uuid: uuidOf(999) }] }, 404, `network ${uuidOf(999)} not found for project p1`],
      [{ requested_networks: [{ uuid: network.uuid, fixed_ip: '10.0.0.1' }] }, 409, /10\.0\.0\.1/],
      [{ requested_networks: [{ uuid: network.uuid, fixed_ip: '10.9.9.9' }] }, 404, /10\.9\.9\.9/],
      [{ host: 'bad host!' }, 400, /^host must be a DNS name/],
    ];
    const before = await snapshot(db());
    for (const [extra, status, message] of refusals) {
      expectFault(await api.call('POST', '/v2.1/os-novanet/instances', { token: p1, body: allocateBody(10, extra) }), status, message);
    }
    expect(await snapshot(db())).toEqual(before);
  });

  it('works under /v2.1/{project_id}/ and /v2/ too', async () => {
    expect((await api.call('POST', '/v2.1/p1/os-novanet/instances', { token: p1, body: allocateBody(11) })).status).toBe(200);
    expect((await api.call('GET', `/v2/os-novanet/instances/${uuidOf(11)}`, { token: p1 })).status).toBe(200);
    expect((await api.call('GET', `/v2/p1/os-novanet/instances/${uuidOf(11)}`, { token: p1 })).status).toBe(200);
    expect((await api.call('DELETE', `/v2.1/ops/os-novanet/instances/${uuidOf(11)}`, { token: admin })).status).toBe(204);
  });
});
