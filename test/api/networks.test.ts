/**
 * Nova's os-networks through HTTP on each backend: list, show, create, delete, the
 * associate/disassociate actions and `add`, with Nova's JSON shapes (admin and
 * non-admin field sets) and fault bodies.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Network } from '../../src/db/networks.js';
import { type Api, expectFault, startApi, uuidOf } from '../support/api.js';
import { BACKENDS } from '../support/databases.js';
import { snapshot } from '../support/dbState.js';
import { countRows, useDatabase } from '../support/managers.js';

const PUBLIC = ['broadcast', 'cidr', 'cidr_v6', 'dns1', 'dns2', 'gateway', 'gateway_v6', 'id', 'label', 'netmask', 'netmask_v6'];
const ADMIN = [
  ...PUBLIC,
  'bridge',
  'bridge_interface',
  'created_at',
  'deleted',
  'deleted_at',
  'dhcp_server',
  'dhcp_start',
  'enable_dhcp',
  'host',
  'injected',
  'mtu',
  'multi_host',
  'priority',
  'project_id',
  'rxtx_base',
  'share_address',
  'updated_at',
  'vlan',
  'vpn_private_address',
  'vpn_public_address',
  'vpn_public_port',
].sort();

type View = Record<string, unknown>;

describe.each(BACKENDS)('os-networks on %s', (backend) => {
  const db = useDatabase(backend);
  let api: Api;
  let admin: string;
  let p1: string;
  let p2: string;
  let shared: Network;
  let owned: Network;

  beforeEach(async () => {
    api = await startApi(db());
    shared = (await api.manager.networks.create({ label: 'shared', fixedRangeV4: '10.0.0.0/24', dns1: '192.0.2.53' }))[0]!;
    owned = (await api.manager.networks.create({ label: 'p1-only', fixedRangeV4: '10.1.0.0/24', projectId: 'p1' }))[0]!;
    admin = await api.token('ops', 'admin');
    p1 = await api.token('p1');
    p2 = await api.token('p2');
  });

  afterEach(async () => {
    await api.close();
  });

  const networkRow = async (uuid: string) =>
    (await db().knex('networks').where({ uuid, deleted: 0 }).first()) as Record<string, unknown> | undefined;

  describe('GET /os-networks', () => {
    it('gives an admin every network with the admin fields', async () => {
      const reply = await api.call('GET', '/v2.1/os-networks', { token: admin });
      expect(reply.status).toBe(200);
      const { networks } = reply.json as { networks: View[] };
      expect(networks.map((network) => network.label)).toEqual(['shared', 'p1-only']);
      expect(Object.keys(networks[0]!).sort()).toEqual(ADMIN);
      expect(networks[0]).toMatchObject({
        id: shared.uuid,
        cidr: '10.0.0.0/24',
        netmask: '255.255.255.0',
        gateway: '10.0.0.1',
        broadcast: '10.0.0.255',
        dns1: '192.0.2.53',
        dhcp_start: '10.0.0.2',
        bridge: 'br100',
        bridge_interface: 'eth1',
        project_id: null,
        multi_host: false,
        enable_dhcp: true,
        share_address: false,
        deleted: false,
        deleted_at: null,
        injected: false,
      });
      expect(networks[1]!.project_id).toBe('p1');
      expect(new Date(networks[0]!.created_at as string).toISOString()).toBe(networks[0]!.created_at);
    });

    it("gives a member the unowned networks and its own, with Nova's non-admin fields", async () => {
      const mine = (await api.call('GET', '/v2.1/os-networks', { token: p1 })).json as { networks: View[] };
      expect(mine.networks.map((network) => network.id)).toEqual([shared.uuid, owned.uuid]);
      for (const network of mine.networks) expect(Object.keys(network).sort()).toEqual(PUBLIC);
      const theirs = (await api.call('GET', '/v2.1/p2/os-networks', { token: p2 })).json as { networks: View[] };
      expect(theirs.networks.map((network) => network.id)).toEqual([shared.uuid]);
    });

    it('in VLAN mode gives a member its own networks only: unowned ones are the spares of the pool', async () => {
      const vlan = await startApi(db(), { mode: 'vlan' });
      try {
        // Beside the flat networks of beforeEach: "shared" (no project) and p1's own.
        const [mine, spare] = await vlan.manager.networks.create({
          label: 'v',
          fixedRangeV4: '10.2.0.0/23',
          numNetworks: 2,
          networkSize: 256,
          vlanStart: 300,
        });
        await vlan.manager.networks.modify({ uuid: mine!.uuid }, { project: 'p1' });
        const member = await vlan.token('p1');
        const listed = (await vlan.call('GET', '/v2.1/os-networks', { token: member })).json as { networks: View[] };
        expect(listed.networks.map((network) => network.id)).toEqual([owned.uuid, mine!.uuid]);
        for (const hidden of [spare!, shared])
          expectFault(await vlan.call('GET', `/v2.1/os-networks/${hidden.uuid}`, { token: member }), 404, /not found/);
        expect((await vlan.call('GET', `/v2.1/os-networks/${mine!.uuid}`, { token: member })).status).toBe(200);
        const admin = await vlan.token('ops', 'admin');
        expect(((await vlan.call('GET', '/v2.1/os-networks', { token: admin })).json as { networks: View[] }).networks).toHaveLength(4);
      } finally {
        await vlan.close();
      }
    });
  });

  describe('GET /os-networks/{id}', () => {
    it('shows a network by uuid: admin fields for an admin, the public ones for a member', async () => {
      const asAdmin = await api.call('GET', `/v2.1/os-networks/${owned.uuid}`, { token: admin });
      expect(asAdmin.status).toBe(200);
      expect(Object.keys((asAdmin.json as { network: View }).network).sort()).toEqual(ADMIN);
      const asOwner = await api.call('GET', `/v2.1/os-networks/${owned.uuid.toUpperCase()}`, { token: p1 });
      expect(asOwner.status).toBe(200);
      expect((asOwner.json as { network: View }).network).toEqual({
        id: owned.uuid,
        label: 'p1-only',
        cidr: '10.1.0.0/24',
        netmask: '255.255.255.0',
        gateway: '10.1.0.1',
        broadcast: '10.1.0.255',
        dns1: owned.dns1,
        dns2: null,
        cidr_v6: null,
        gateway_v6: null,
        netmask_v6: null,
      });
      expect((await api.call('GET', `/v2.1/os-networks/${shared.uuid}`, { token: p2 })).status).toBe(200);
    });

    it("answers 404 for unknown, malformed and other projects' networks", async () => {
      expectFault(await api.call('GET', `/v2.1/os-networks/${owned.uuid}`, { token: p2 }), 404, `Network ${owned.uuid} not found`);
      expectFault(await api.call('GET', `/v2.1/os-networks/${uuidOf(77)}`, { token: admin }), 404, `network ${uuidOf(77)} not found`);
      expectFault(await api.call('GET', '/v2.1/os-networks/42', { token: admin }), 404, 'Network 42 not found');
    });
  });

  describe('POST /os-networks', () => {
    it('creates one network over the whole CIDR and answers with its admin view', async () => {
      const reply = await api.call('POST', '/v2.1/os-networks', {
        token: admin,
        body: {
          network: {
            label: 'new net',
            cidr: '10.20.0.0/25',
            dns1: '8.8.8.8',
            dns2: '8.8.4.4',
            multi_host: 'True',
            mtu: '1400',
            priority: 3,
            ipam: true,
          },
        },
      });
      expect(reply.status).toBe(200);
      const { network } = reply.json as { network: View };
      expect(Object.keys(network).sort()).toEqual(ADMIN);
      expect(network).toMatchObject({
        label: 'new net',
        cidr: '10.20.0.0/25',
        netmask: '255.255.255.128',
        gateway: '10.20.0.1',
        broadcast: '10.20.0.127',
        dns1: '8.8.8.8',
        dns2: '8.8.4.4',
        multi_host: true,
        mtu: 1400,
        priority: 3,
        project_id: null,
      });
      const row = await networkRow(network.id as string);
      expect(row).toMatchObject({ label: 'new net', cidr: '10.20.0.0/25' });
      // Nova's API made the network as large as the range: 128 addresses, not network_size's 256.
      expect(await countRows(db(), 'fixed_ips', { network_id: row!.id })).toBe(128);
      expect(api.h.host.kinds()).toContain('network-updated');
    });

    it('creates num_networks networks and returns the first', async () => {
      const reply = await api.call('POST', '/v2.1/os-networks', {
        token: admin,
        body: { network: { label: 'split', cidr: '10.30.0.0/24', num_networks: 2, network_size: 128 } },
      });
      expect(reply.status).toBe(200);
      expect((reply.json as { network: View }).network).toMatchObject({ cidr: '10.30.0.0/25', label: 'split_0' });
      expect(await countRows(db(), 'networks', { label: 'split_1', cidr: '10.30.0.128/25', deleted: 0 })).toBe(1);
    });

    it('fills the VLAN fields in VLAN mode', async () => {
      const vlanApi = await startApi(db(), { mode: 'vlan' });
      try {
        const token = await vlanApi.token('ops', 'admin');
        const reply = await vlanApi.call('POST', '/v2.1/os-networks', {
          token,
          body: { network: { label: 'tenant', cidr: '10.40.0.0/24', vlan_start: 300, project_id: 'p9' } },
        });
        expect(reply.status).toBe(200);
        expect((reply.json as { network: View }).network).toMatchObject({
          vlan: 300,
          bridge: 'br300',
          project_id: 'p9',
          vpn_public_port: 1000,
        });
      } finally {
        await vlanApi.close();
      }
    });

    it('maps refusals to faults and writes nothing', async () => {
      const before = await snapshot(db());
      const create = (network: Record<string, unknown>) => api.call('POST', '/v2.1/os-networks', { token: admin, body: { network } });
      expectFault(await create({ label: 'dup', cidr: '10.0.0.0/24' }), 409, /10\.0\.0\.0\/24/);
      expectFault(await create({ label: 'bad', cidr: '10.0.0.0/33' }), 400, /fixed_range_v4/);
      expectFault(
        await create({ label: 'bad', cidr: '10.50.0.0/24', gateway: '10.99.0.1' }),
        400,
        /gateway 10\.99\.0\.1 is not a usable address/,
      );
      expectFault(await create({ cidr: '10.50.0.0/24' }), 400, 'network.label is required');
      expectFault(await create({ label: 'v6 only', cidr_v6: 'fd00:1::/64' }), 400, /^network\.cidr is required/);
      expectFault(
        await create({ label: 'x', cidr: '10.50.0.0/24', allowed_start: '10.50.0.10' }),
        400,
        /^network\.allowed_start is not supported/,
      );
      expectFault(
        await create({ label: 'x', cidr: '10.50.0.0/24', vlan: 5000 }),
        400,
        'network.vlan must be an integer from 1 to 4094, got 5000',
      );
      expectFault(
        await create({ label: 'x', cidr: '10.50.0.0/24', multi_host: 'maybe' }),
        400,
        'network.multi_host must be true or false, got "maybe"',
      );
      expectFault(await create({ label: 'x', cidr: '10.50.0.0/24', uuid: uuidOf(1) }), 400, 'network has unknown field "uuid"');
      expect(await snapshot(db())).toEqual(before);
    });
  });

  describe('DELETE /os-networks/{id}', () => {
    it('deletes an unused network (202); it is gone afterwards', async () => {
      const reply = await api.call('DELETE', `/v2.1/os-networks/${shared.uuid}`, { token: admin });
      expect(reply.status).toBe(202);
      expect(reply.text).toBe('');
      expect(await networkRow(shared.uuid)).toBeUndefined();
      expectFault(await api.call('GET', `/v2.1/os-networks/${shared.uuid}`, { token: admin }), 404);
      expectFault(await api.call('DELETE', `/v2.1/os-networks/${shared.uuid}`, { token: admin }), 404);
    });

    it('refuses a network that a project owns or an instance uses (409, nothing changed)', async () => {
      await api.manager.allocation.allocate({
        instanceUuid: uuidOf(1),
        projectId: 'p2',
        host: 'compute1',
        requestedNetworks: [{ networkUuid: shared.uuid }],
      });
      const before = await snapshot(db());
      expectFault(await api.call('DELETE', `/v2.1/os-networks/${owned.uuid}`, { token: admin }), 409, /associated with project p1/);
      expectFault(await api.call('DELETE', `/v2.1/os-networks/${shared.uuid}`, { token: admin }), 409, /still has 1 fixed IP/);
      expect(await snapshot(db())).toEqual(before);
    });
  });

  describe('POST /os-networks/{id}/action', () => {
    const action = (uuid: string, body: unknown) => api.call('POST', `/v2.1/os-networks/${uuid}/action`, { token: admin, body });

    it('associates and disassociates host and project', async () => {
      expect((await action(owned.uuid, { associate_host: 'net2' })).status).toBe(202);
      expect(await networkRow(owned.uuid)).toMatchObject({ host: 'net2', project_id: 'p1' });
      expect((await action(owned.uuid, { disassociate_host: null })).status).toBe(202);
      expect(await networkRow(owned.uuid)).toMatchObject({ host: null, project_id: 'p1' });
      expect((await action(owned.uuid, { disassociate_project: null })).status).toBe(202);
      expect(await networkRow(owned.uuid)).toMatchObject({ host: null, project_id: null });
      await action(owned.uuid, { associate_host: 'net3' });
      await db().knex('networks').where('uuid', owned.uuid).update({ project_id: 'p1' });
      const reply = await action(owned.uuid, { disassociate: null });
      expect(reply.status).toBe(202);
      expect(reply.text).toBe('');
      expect(await networkRow(owned.uuid)).toMatchObject({ host: null, project_id: null });
    });

    it('refuses malformed actions, unknown networks and a project still in use, changing nothing', async () => {
      await api.manager.allocation.allocate({
        instanceUuid: uuidOf(2),
        projectId: 'p1',
        host: 'compute1',
        requestedNetworks: [{ networkUuid: owned.uuid }],
      });
      const before = await snapshot(db());
      expectFault(
        await action(owned.uuid, { frobnicate: null }),
        400,
        /^There is no such action: "frobnicate"; os-networks actions are disassociate, disassociate_host, disassociate_project, associate_host$/,
      );
      expectFault(await action(owned.uuid, { disassociate_host: null, disassociate_project: null }), 400, /exactly one action, got 2 keys/);
      expectFault(await action(owned.uuid, []), 400, /must be an object naming one action, got a list/);
      expectFault(await action(owned.uuid, { associate_host: 7 }), 400, 'associate_host must be a string, got an integer');
      expectFault(await action(owned.uuid, { associate_host: 'no spaces allowed' }), 400, /^host must be a DNS name/);
      expectFault(await action(owned.uuid, { disassociate_host: 'yes' }), 400, 'disassociate_host must be null, got a string');
      expectFault(await action(uuidOf(55), { disassociate: null }), 404);
      expectFault(await action(owned.uuid, { disassociate_project: null }), 409, /still has 1 fixed IP/);
      expect(await snapshot(db())).toEqual(before);
    });
  });

  describe('POST /os-networks/add', () => {
    it("gives the named network to the URL's project, or to the caller's", async () => {
      expect((await api.call('POST', '/v2.1/p7/os-networks/add', { token: admin, body: { id: shared.uuid } })).status).toBe(202);
      expect(await networkRow(shared.uuid)).toMatchObject({ project_id: 'p7' });
      // The same again changes nothing and is fine.
      expect((await api.call('POST', '/v2.1/p7/os-networks/add', { token: admin, body: { id: shared.uuid } })).status).toBe(202);
      await api.manager.networks.modify({ uuid: shared.uuid }, { disassociateProject: true });
      expect((await api.call('POST', '/v2.1/os-networks/add', { token: admin, body: { id: shared.uuid } })).status).toBe(202);
      expect(await networkRow(shared.uuid)).toMatchObject({ project_id: 'ops' });
    });

    it('with id null takes the first network no project owns; none left is 400', async () => {
      expect((await api.call('POST', '/v2/p8/os-networks/add', { token: admin, body: { id: null } })).status).toBe(202);
      expect(await networkRow(shared.uuid)).toMatchObject({ project_id: 'p8' });
      expectFault(
        await api.call('POST', '/v2/p8/os-networks/add', { token: admin, body: { id: null } }),
        400,
        /No more available networks/,
      );
    });

    it('refuses unknown networks (400 as Nova), networks of another project (409) and bad bodies', async () => {
      const before = await snapshot(db());
      expectFault(
        await api.call('POST', '/v2.1/p7/os-networks/add', { token: admin, body: { id: uuidOf(66) } }),
        400,
        `network ${uuidOf(66)} not found`,
      );
      expectFault(
        await api.call('POST', '/v2.1/p7/os-networks/add', { token: admin, body: { id: owned.uuid } }),
        409,
        /already belongs to project p1/,
      );
      expectFault(await api.call('POST', '/v2.1/p7/os-networks/add', { token: admin, body: {} }), 400, 'id is required');
      expectFault(
        await api.call('POST', '/v2.1/p7/os-networks/add', { token: admin, body: { id: 5 } }),
        400,
        'id must be a string, got an integer',
      );
      expect(await snapshot(db())).toEqual(before);
    });
  });
});
