import { describe, expect, it } from 'vitest';
import { Invalid, NetworkHasProject, NetworkInUse, NetworkNotFound } from '../../src/errors.js';
import { BACKENDS } from '../support/databases.js';
import { countRows, expectRefused, firstAddress, type Harness, harness, instance, MODES, useDatabase } from '../support/managers.js';

function allocate(h: Harness, n: number, projectId = 'p1') {
  return h.manager.allocation.allocate({ instanceUuid: instance(n), projectId, host: 'compute1', hostname: `vm${n}` });
}

describe.each(BACKENDS)('network administration on %s', (backend) => {
  const db = useDatabase(backend);

  describe.each(MODES)('in %s mode', (mode) => {
    const dhcp = mode !== 'flat';

    /** A network with instances on it but no project (VLAN networks get one on first use). */
    async function inUseWithoutProject(h: Harness, count: number) {
      const [network] = await h.manager.networks.create({ label: 'busy', fixedRangeV4: '10.0.0.0/24' });
      for (let n = 1; n <= count; n++) await allocate(h, n);
      // VLAN mode claimed the network for p1; clear that the way an operator's direct DB edit would.
      if (mode === 'vlan') await db().knex('networks').where('id', network!.id).update({ project_id: null });
      return network!;
    }

    describe('networks.delete', () => {
      it('removes the fixed IPs, soft-deletes the network and tells the host', async () => {
        const h = harness(db(), mode);
        const [network] = await h.manager.networks.create({ label: 'del', fixedRangeV4: '10.0.0.0/24' });
        const [kept] = await h.manager.networks.create({ label: 'kept', fixedRangeV4: '10.0.1.0/24' });
        h.host.clear();
        const deleted = await h.manager.networks.delete({ id: network!.id });
        expect(deleted).toMatchObject({ id: network!.id, cidr: '10.0.0.0/24' });
        expect(await countRows(db(), 'fixed_ips', { network_id: network!.id })).toBe(0);
        expect(await countRows(db(), 'fixed_ips', { network_id: kept!.id })).toBe(256);
        const row = (await db().knex('networks').where('id', network!.id).first()) as Record<string, unknown>;
        expect(Number(row.deleted)).toBe(network!.id);
        expect(row.deleted_at).not.toBeNull();
        expect(h.host.changes).toEqual([{ kind: 'network-deleted', network: deleted }]);
        await expect(h.manager.networks.get({ id: network!.id })).rejects.toThrow(NetworkNotFound);
        expect((await h.manager.networks.list()).map((entry) => entry.label)).toEqual(['kept']);
      });

      it('finds the network by uuid and by cidr', async () => {
        const h = harness(db(), mode);
        const [a] = await h.manager.networks.create({ label: 'a', fixedRangeV4: '10.0.0.0/24' });
        const [b] = await h.manager.networks.create({ label: 'b', fixedRangeV4: '10.0.1.0/24' });
        expect((await h.manager.networks.delete({ uuid: a!.uuid.toUpperCase() })).id).toBe(a!.id);
        // Issue 16: a range with blanks around it names no network; it was trimmed into one.
        await expect(h.manager.networks.delete({ cidr: ' 10.0.1.0/24 ' })).rejects.toThrow(/^fixed_range must be/);
        expect((await h.manager.networks.delete({ cidr: '10.0.1.0/24' })).id).toBe(b!.id);
        expect(await h.manager.networks.list()).toEqual([]);
      });

      it('refuses an unknown network', async () => {
        const h = harness(db(), mode);
        await h.manager.networks.create({ label: 'a', fixedRangeV4: '10.0.0.0/24' });
        await expectRefused(
          db(),
          () => h.manager.networks.delete({ cidr: '10.9.0.0/24' }),
          NetworkNotFound,
          /network 10\.9\.0\.0\/24 not found/,
        );
        await expectRefused(
          db(),
          () => h.manager.networks.delete({ uuid: '99999999-9999-4999-8999-999999999999' }),
          NetworkNotFound,
          /network 99999999-9999-4999-8999-999999999999 not found/,
        );
        await expectRefused(db(), () => h.manager.networks.delete({ id: 424242 }), NetworkNotFound, /network 424242 not found/);
        await expectRefused(db(), () => h.manager.networks.delete({ uuid: 'nope' }), Invalid, /uuid must be a UUID/);
      });

      it('refuses a network still associated with a project, naming it', async () => {
        const h = harness(db(), mode);
        const [network] = await h.manager.networks.create({ label: 'owned', fixedRangeV4: '10.0.0.0/24', projectId: 'acme' });
        await expectRefused(
          db(),
          () => h.manager.networks.delete({ id: network!.id }),
          NetworkHasProject,
          /network 10\.0\.0\.0\/24 is associated with project acme; disassociate it first/,
        );
      });

      it('refuses a network while instances hold addresses, saying how many', async () => {
        const h = harness(db(), mode);
        const network = await inUseWithoutProject(h, 2);
        await expectRefused(
          db(),
          () => h.manager.networks.delete({ id: network.id }),
          NetworkInUse,
          /network 10\.0\.0\.0\/24 still has 2 fixed IP\(s\) held by instances \(2 allocated\); deallocate them first/,
        );
        await h.manager.allocation.deallocate(instance(1));
        await h.manager.allocation.deallocate(instance(2));
        if (dhcp) {
          // Deallocated but not yet released: still held.
          await expectRefused(
            db(),
            () => h.manager.networks.delete({ id: network.id }),
            NetworkInUse,
            /still has 2 fixed IP\(s\) held by instances \(0 allocated\)/,
          );
          for (const address of ['10.0.0.2', '10.0.0.3', '10.0.0.4']) {
            const held = (await db().knex('fixed_ips').where({ address }).first('instance_uuid')) as { instance_uuid: string | null };
            if (held.instance_uuid !== null) await h.manager.leases.release(address);
          }
        }
        await h.manager.networks.delete({ id: network.id });
        expect(await countRows(db(), 'fixed_ips')).toBe(0);
      });
    });

    describe('networks.modify', () => {
      it('associates and disassociates a project and a host', async () => {
        const h = harness(db(), mode);
        const [network] = await h.manager.networks.create({ label: 'm', fixedRangeV4: '10.0.0.0/24' });
        h.host.clear();
        const owned = await h.manager.networks.modify({ cidr: '10.0.0.0/24' }, { project: 'acme', host: 'net2' });
        expect(owned).toMatchObject({ projectId: 'acme', host: 'net2' });
        expect(await h.manager.networks.get({ id: network!.id })).toMatchObject({ projectId: 'acme', host: 'net2' });
        expect(h.host.changes).toEqual([{ kind: 'network-updated', networkId: network!.id }]);
        // The same project again is a no-op, not a conflict.
        await h.manager.networks.modify({ id: network!.id }, { project: 'acme' });
        await h.manager.networks.modify({ uuid: network!.uuid }, { disassociateProject: true });
        expect((await h.manager.networks.get({ id: network!.id })).projectId).toBeNull();
        await h.manager.networks.modify({ id: network!.id }, { disassociateHost: true });
        expect((await h.manager.networks.get({ id: network!.id })).host).toBeNull();
      });

      it.each([
        [
          '--project with --disassociate-project',
          { project: 'a', disassociateProject: true },
          /--project and --disassociate-project contradict each other/,
        ],
        ['--host with --disassociate-host', { host: 'h1', disassociateHost: true }, /--host and --disassociate-host contradict each other/],
        ['nothing to modify', {}, /nothing to modify: give --project, --host, --disassociate-project or --disassociate-host/],
        ['a bad project', { project: 'a b' }, /project must be 1-255 letters/],
        ['a bad host', { host: 'net host' }, /host must be a DNS name/],
      ])('refuses %s', async (_name, request, message) => {
        const h = harness(db(), mode);
        const [network] = await h.manager.networks.create({ label: 'm', fixedRangeV4: '10.0.0.0/24' });
        await expectRefused(db(), () => h.manager.networks.modify({ id: network!.id }, request), Invalid, message);
      });

      it("refuses to give another project's network away", async () => {
        const h = harness(db(), mode);
        const [network] = await h.manager.networks.create({ label: 'm', fixedRangeV4: '10.0.0.0/24', projectId: 'acme' });
        await expectRefused(
          db(),
          () => h.manager.networks.modify({ id: network!.id }, { project: 'other' }),
          NetworkHasProject,
          /network 10\.0\.0\.0\/24 already belongs to project acme; disassociate it first/,
        );
      });

      it('refuses to disassociate a project while its instances hold addresses', async () => {
        const h = harness(db(), mode);
        const [network] = await h.manager.networks.create({ label: 'm', fixedRangeV4: '10.0.0.0/24', projectId: 'p1' });
        await allocate(h, 1);
        await expectRefused(
          db(),
          () => h.manager.networks.modify({ id: network!.id }, { disassociateProject: true }),
          NetworkInUse,
          /still has 1 fixed IP\(s\)/,
        );
      });

      it('refuses an unknown network', async () => {
        const h = harness(db(), mode);
        await expectRefused(
          db(),
          () => h.manager.networks.modify({ cidr: '10.0.0.0/24' }, { project: 'acme' }),
          NetworkNotFound,
          /network 10\.0\.0\.0\/24 not found/,
        );
      });
    });

    describe('networks.scrub', () => {
      it("disassociates the project's networks only, from their project and their host", async () => {
        const h = harness(db(), mode);
        const [a] = await h.manager.networks.create({ label: 'a', fixedRangeV4: '10.0.0.0/24', projectId: 'acme' });
        const [b] = await h.manager.networks.create({ label: 'b', fixedRangeV4: '10.0.1.0/24', projectId: 'acme' });
        const [c] = await h.manager.networks.create({ label: 'c', fixedRangeV4: '10.0.2.0/24', projectId: 'other' });
        for (const network of [a!, b!, c!]) await h.manager.networks.modify({ uuid: network.uuid }, { host: 'nethost' });
        h.host.clear();
        const scrubbed = await h.manager.networks.scrub('acme');
        expect(scrubbed.map((network) => network.id)).toEqual([a!.id, b!.id]);
        expect((await h.manager.networks.get({ id: a!.id })).host).toBeNull();
        expect((await h.manager.networks.get({ id: c!.id })).host).toBe('nethost');
        expect(await h.manager.networks.list({ projectId: 'acme' })).toEqual([]);
        expect((await h.manager.networks.get({ id: c!.id })).projectId).toBe('other');
        expect(h.host.changes).toEqual([a!, b!].map((network) => ({ kind: 'network-updated', networkId: network.id })));
        expect(await h.manager.networks.scrub('nobody')).toEqual([]);
      });

      it('refuses while the project holds addresses, and then works', async () => {
        const h = harness(db(), mode);
        const [network] = await h.manager.networks.create({ label: 'a', fixedRangeV4: '10.0.0.0/24', projectId: 'p1' });
        const address = firstAddress(await allocate(h, 1));
        await expectRefused(
          db(),
          () => h.manager.networks.scrub('p1'),
          NetworkInUse,
          /network 10\.0\.0\.0\/24 still has 1 fixed IP\(s\) held by instances/,
        );
        await h.manager.allocation.deallocate(instance(1));
        if (dhcp) await h.manager.leases.release(address);
        await h.manager.networks.scrub('p1');
        expect((await h.manager.networks.get({ id: network!.id })).projectId).toBeNull();
      });

      it('refuses a bad project id', async () => {
        const h = harness(db(), mode);
        await expectRefused(db(), () => h.manager.networks.scrub('a;b'), Invalid, /project must be 1-255 letters/);
      });
    });
  });

  describe('VLAN life cycle', () => {
    it('claim on use, scrub, delete, and the VLAN id is free again', async () => {
      const h = harness(db(), 'vlan');
      const [network] = await h.manager.networks.create({ label: 'v', fixedRangeV4: '10.0.0.0/24' });
      const address = firstAddress(await allocate(h, 1, 'tenant'));
      await expectRefused(db(), () => h.manager.networks.delete({ id: network!.id }), NetworkHasProject, /associated with project tenant/);
      await h.manager.allocation.deallocate(instance(1));
      await h.manager.leases.release(address);
      await h.manager.networks.scrub('tenant');
      await h.manager.networks.delete({ uuid: network!.uuid });
      const [again] = await h.manager.networks.create({ label: 'v2', fixedRangeV4: '10.0.0.0/24' });
      expect(again).toMatchObject({ vlan: 100, bridge: 'br100', vpnPublicPort: 1000 });
    });
  });
});

/** What os-networks asks of the service for a member: the networks its project may see. */
describe.each(BACKENDS)('networks.list for a project on %s', (backend) => {
  const db = useDatabase(backend);

  describe.each(MODES)('in %s mode', (mode) => {
    it('visibleTo: the unowned networks and the project’s own, not other projects’', async () => {
      const h = harness(db(), mode);
      const [shared] = await h.manager.networks.create({ label: 'shared', fixedRangeV4: '10.0.0.0/24' });
      const [mine] = await h.manager.networks.create({ label: 'mine', fixedRangeV4: '10.1.0.0/24', projectId: 'p1' });
      await h.manager.networks.create({ label: 'theirs', fixedRangeV4: '10.2.0.0/24', projectId: 'p2' });
      expect((await h.manager.networks.list({ visibleTo: 'p1' })).map((network) => network.id)).toEqual([shared!.id, mine!.id]);
      expect((await h.manager.networks.list({ visibleTo: 'p3' })).map((network) => network.label)).toEqual(['shared']);
      expect((await h.manager.networks.list({ projectId: 'p1' })).map((network) => network.label)).toEqual(['mine']);
      expect(await h.manager.networks.list()).toHaveLength(3);
    });
  });
});
