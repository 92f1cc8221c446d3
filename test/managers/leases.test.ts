import { describe, expect, it } from 'vitest';
import { FixedIpNotFound, Invalid, NoMoreFixedIps } from '../../src/errors.js';
import { BACKENDS } from '../support/databases.js';
import { snapshot } from '../support/dbState.js';
import {
  countRows,
  expectRefused,
  firstAddress,
  fixedRow,
  freeAddresses,
  type Harness,
  harness,
  instance,
  MODES,
  useDatabase,
} from '../support/managers.js';

function allocate(h: Harness, n: number) {
  return h.manager.allocation.allocate({ instanceUuid: instance(n), projectId: 'p1', host: 'compute1', hostname: `vm${n}` });
}

describe.each(BACKENDS)('deallocation and leases on %s', (backend) => {
  const db = useDatabase(backend);

  describe.each(MODES)('in %s mode', (mode) => {
    const dhcp = mode !== 'flat';

    describe('allocation.deallocate', () => {
      it('detaches every address, deletes the VIFs, and tells the host', async () => {
        const h = harness(db(), mode);
        const nets = await h.manager.networks.create({
          label: 'd',
          fixedRangeV4: '10.0.0.0/16',
          numNetworks: 2,
          networkSize: 256,
          projectId: 'p1',
        });
        const info = await allocate(h, 1);
        const addresses = info.network_info.map((vif) => vif.network.subnets[0]!.ips[0]!.address);
        expect(addresses).toHaveLength(2);
        // dnsmasq reported a lease of the first address only.
        if (dhcp) await h.manager.leases.lease(addresses[0]!);
        h.host.clear();
        await h.manager.allocation.deallocate(instance(1));
        expect(await countRows(db(), 'virtual_interfaces')).toBe(0);
        for (const address of addresses) {
          expect(await fixedRow(db(), address)).toMatchObject({
            allocated: false,
            virtualInterfaceId: null,
            // Flat has no DHCP lease to wait for; DHCP modes hold the address until release or timeout.
            instanceUuid: dhcp ? instance(1) : null,
          });
        }
        expect(await h.manager.allocation.networkInfo(instance(1))).toEqual({
          instance_uuid: instance(1),
          project_id: null,
          network_info: [],
        });
        // Each address leaves its network's DHCP hosts; nothing else of the networks changed.
        expect(h.host.changes.filter((change) => change.kind === 'network-updated')).toEqual([]);
        const removed = h.host.changes.filter((change) => change.kind === 'dhcp-host');
        expect(removed).toEqual(
          info.network_info.map((vif, index) => ({
            kind: 'dhcp-host',
            networkId: nets[index]!.id,
            action: 'remove',
            computeHost: 'compute1',
            entry: { mac: vif.address, hostname: 'vm1', address: addresses[index] },
          })),
        );
        const releases = h.host.changes.filter((change) => change.kind === 'release-lease');
        if (dhcp) {
          // The address never leased has nothing to release.
          expect(releases).toEqual([
            { kind: 'release-lease', networkId: nets[0]!.id, address: addresses[0], mac: info.network_info[0]!.address },
          ]);
        } else {
          expect(releases).toEqual([]);
        }
      });

      it('sends no release-lease when force_dhcp_release is off', async () => {
        const h = harness(db(), mode, { config: { force_dhcp_release: 'false' } });
        await h.manager.networks.create({ label: 'd', fixedRangeV4: '10.0.0.0/24' });
        await allocate(h, 1);
        h.host.clear();
        await h.manager.allocation.deallocate(instance(1));
        expect(h.host.kinds()).toEqual(['dhcp-host']);
      });

      it(dhcp ? 'keeps the address from other instances until the lease is released' : 'makes the address reusable at once', async () => {
        const h = harness(db(), mode);
        const [network] = await h.manager.networks.create({ label: 'tiny', fixedRangeV4: '10.0.0.0/29', networkSize: 8 });
        const pool = await freeAddresses(db(), network!.id);
        for (let n = 1; n <= pool.length; n++) await allocate(h, n);
        const address = (await fixedRow(db(), pool[0]!)).address;
        await h.manager.allocation.deallocate(instance(1));
        if (dhcp) {
          await expectRefused(db(), () => allocate(h, 50), NoMoreFixedIps, /no more fixed IPs/);
          await h.manager.leases.release(address);
        }
        expect(firstAddress(await allocate(h, 50))).toBe(address);
      });

      it('is a no-op for an unknown instance, and for a second call', async () => {
        const h = harness(db(), mode);
        await h.manager.networks.create({ label: 'd', fixedRangeV4: '10.0.0.0/24' });
        await allocate(h, 1);
        h.host.clear();
        const before = await snapshot(db());
        await h.manager.allocation.deallocate(instance(2));
        expect(await snapshot(db())).toEqual(before);
        expect(h.host.changes).toEqual([]);
        await h.manager.allocation.deallocate(instance(1));
        const after = await snapshot(db());
        h.host.clear();
        await h.manager.allocation.deallocate(instance(1));
        expect(await snapshot(db())).toEqual(after);
        expect(h.host.changes).toEqual([]);
      });

      it('frees an instance with four statements besides BEGIN and COMMIT: its VIFs and their fixed IPs are one read', async () => {
        const h = harness(db(), mode);
        await h.manager.networks.create({ label: 'd', fixedRangeV4: '10.0.0.0/24' });
        await h.manager.allocation.allocate({ instanceUuid: instance(1), projectId: 'p1', host: 'compute1' });
        const statements: string[] = [];
        const record = (query: { sql: string }) => statements.push(query.sql.split(' ')[0]!.toLowerCase());
        db().knex.on('query', record);
        await h.manager.allocation.deallocate(instance(1)).finally(() => db().knex.off('query', record));
        expect(statements.filter((verb) => !/^(begin|commit|savepoint|release)/.test(verb))).toEqual([
          'select',
          'update',
          'select',
          'delete',
        ]);
      });

      it("shares transactions between calls at once; each gets its own answer, and another project's instance is left alone", async () => {
        const h = harness(db(), mode);
        await h.manager.networks.create({ label: 'd', fixedRangeV4: '10.0.0.0/16', numNetworks: 2, networkSize: 256 });
        const owner = (n: number) => (n <= 40 ? 'p1' : 'p2');
        for (let n = 1; n <= 45; n++)
          await h.manager.allocation.allocate({ instanceUuid: instance(n), projectId: owner(n), host: 'compute1', hostname: `vm${n}` });
        const vifsOf = async (n: number) => (await h.manager.allocation.networkInfo(instance(n))).network_info.map((vif) => vif.address);
        const macs = new Map<number, string[]>();
        for (let n = 1; n <= 45; n++) macs.set(n, await vifsOf(n));
        h.host.clear();
        let queries = 0;
        const count = () => queries++;
        db().knex.on('query', count);
        const calls = [
          ...Array.from({ length: 44 }, (_, index) => h.manager.allocation.deallocate(instance(index + 1), { onlyProject: 'p1' })),
          h.manager.allocation.deallocate(instance(45)),
          h.manager.allocation.deallocate(instance(99), { onlyProject: 'p1' }),
          // In the last batch (32 at most: calls 33 to 48): instance 40 twice, and
          // another project's call beside its owner's. Each is freed once.
          h.manager.allocation.deallocate(instance(40), { onlyProject: 'p1' }),
          h.manager.allocation.deallocate(instance(45), { onlyProject: 'p1' }),
        ];
        const answers = await Promise.all(calls).finally(() => db().knex.off('query', count));
        expect(answers).toEqual([
          ...Array.from({ length: 44 }, (_, index) => ({ projectId: owner(index + 1) })),
          { projectId: 'p2' },
          undefined,
          { projectId: 'p1' },
          { projectId: 'p2' },
        ]);
        // Four statements for one call alone; 48 calls in two transactions.
        expect(queries).toBeLessThan(48 * 2);
        for (let n = 1; n <= 45; n++) expect(await vifsOf(n)).toEqual(n > 40 && n < 45 ? macs.get(n) : []);
        const removed = h.host.changes.flatMap((change) => (change.kind === 'dhcp-host' ? [change.entry.mac] : []));
        expect(removed.sort()).toEqual([...[...Array(40).keys()].flatMap((index) => macs.get(index + 1)!), ...macs.get(45)!].sort());
      });

      it('refuses a malformed instance uuid', async () => {
        const h = harness(db(), mode);
        await h.manager.networks.create({ label: 'd', fixedRangeV4: '10.0.0.0/24' });
        await expectRefused(
          db(),
          () => h.manager.allocation.deallocate('instance-1'),
          Invalid,
          /instance_uuid must be a UUID, got "instance-1"/,
        );
      });
    });

    describe('leases.lease / leases.release', () => {
      async function allocated(h: Harness) {
        await h.manager.networks.create({ label: 'l', fixedRangeV4: '10.0.0.0/24', projectId: 'p1' });
        const info = await allocate(h, 1);
        return { address: firstAddress(info), mac: info.network_info[0]!.address, networkUuid: info.network_info[0]!.network.id };
      }

      it('lease marks the address leased and tells the host', async () => {
        const h = harness(db(), mode);
        const { address, mac } = await allocated(h);
        h.host.clear();
        await h.manager.leases.lease(address, mac);
        expect(await fixedRow(db(), address)).toMatchObject({ leased: true, allocated: true, instanceUuid: instance(1) });
        expect(h.host.kinds()).toEqual(['network-updated']);
        // Upper-case MACs from dnsmasq are the same MAC; no MAC at all is accepted too.
        await h.manager.leases.release(address, mac.toUpperCase());
        expect((await fixedRow(db(), address)).leased).toBe(false);
        await h.manager.leases.lease(address);
        expect((await fixedRow(db(), address)).leased).toBe(true);
      });

      it('release of an allocated address only clears leased', async () => {
        const h = harness(db(), mode);
        const { address, mac } = await allocated(h);
        await h.manager.leases.lease(address, mac);
        await h.manager.leases.release(address, mac);
        expect(await fixedRow(db(), address)).toMatchObject({ leased: false, allocated: true, instanceUuid: instance(1) });
      });

      it('release after deallocation frees the address', async () => {
        const h = harness(db(), mode);
        const { address, mac } = await allocated(h);
        await h.manager.leases.lease(address, mac);
        await h.manager.allocation.deallocate(instance(1));
        await h.manager.leases.release(address, mac);
        expect(await fixedRow(db(), address)).toMatchObject({
          leased: false,
          allocated: false,
          instanceUuid: null,
          virtualInterfaceId: null,
        });
      });

      it('ignores a late report from the old VIF once the address belongs to a new one', async () => {
        const h = harness(db(), mode);
        const { address, mac: oldMac, networkUuid } = await allocated(h);
        await h.manager.leases.lease(address, oldMac);
        await h.manager.allocation.deallocate(instance(1));
        await h.manager.leases.release(address, oldMac);
        const next = await h.manager.allocation.allocate({
          instanceUuid: instance(2),
          projectId: 'p1',
          host: 'compute1',
          requestedNetworks: [{ networkUuid, address }],
        });
        const newMac = next.network_info[0]!.address;
        expect(newMac).not.toBe(oldMac);
        await h.manager.leases.lease(address, newMac);
        const before = await snapshot(db());
        h.host.clear();
        await h.manager.leases.release(address, oldMac);
        await h.manager.leases.lease(address, oldMac);
        expect(await snapshot(db())).toEqual(before);
        expect(h.host.changes).toEqual([]);
        expect(h.logs.some((line) => line.includes(`now belongs to ${newMac}`))).toBe(true);
        expect(await fixedRow(db(), address)).toMatchObject({ leased: true, allocated: true, instanceUuid: instance(2) });
      });

      it('refuses an unknown address, a malformed address and a malformed MAC, changing nothing', async () => {
        const h = harness(db(), mode);
        const { address } = await allocated(h);
        await expectRefused(
          db(),
          () => h.manager.leases.lease('10.9.9.9', 'fa:16:3e:00:00:01'),
          FixedIpNotFound,
          /fixed IP 10\.9\.9\.9 not found/,
        );
        await expectRefused(db(), () => h.manager.leases.release('10.9.9.9'), FixedIpNotFound, /fixed IP 10\.9\.9\.9 not found/);
        await expectRefused(db(), () => h.manager.leases.lease('10.0.0.x'), Invalid, /address must be an IP address/);
        await expectRefused(
          db(),
          () => h.manager.leases.release(address, 'fa:16:3e:00:00'),
          Invalid,
          /MAC must look like fa:16:3e:00:00:01, got "fa:16:3e:00:00"/,
        );
        await expectRefused(db(), () => h.manager.leases.lease(address, 'fa-16-3e-00-00-01'), Invalid, /MAC must look like/);
      });
    });

    describe('leases.disassociateStale', () => {
      it(
        dhcp
          ? 'frees addresses deallocated longer than the timeout ago, keeps recent ones'
          : 'returns 0: flat frees addresses at deallocation',
        async () => {
          const h = harness(db(), mode);
          await h.manager.networks.create({ label: 's', fixedRangeV4: '10.0.0.0/24' });
          const a = firstAddress(await allocate(h, 1));
          const b = firstAddress(await allocate(h, 2));
          const c = firstAddress(await allocate(h, 3));
          await h.manager.leases.lease(a);
          await h.manager.allocation.deallocate(instance(1));
          h.clock.advance(300);
          await h.manager.allocation.deallocate(instance(2));
          h.clock.advance(301);
          if (!dhcp) {
            const before = await snapshot(db());
            expect(await h.manager.leases.disassociateStale()).toBe(0);
            expect(await snapshot(db())).toEqual(before);
            return;
          }
          expect(await h.manager.leases.disassociateStale()).toBe(1);
          expect(await fixedRow(db(), a)).toMatchObject({ instanceUuid: null, leased: false, allocated: false });
          expect(await fixedRow(db(), b)).toMatchObject({ instanceUuid: instance(2), allocated: false });
          // A running instance's address is never touched.
          expect(await fixedRow(db(), c)).toMatchObject({ instanceUuid: instance(3), allocated: true });
          expect(await h.manager.leases.disassociateStale()).toBe(0);
          h.clock.advance(300);
          expect(await h.manager.leases.disassociateStale()).toBe(1);
          expect((await fixedRow(db(), b)).instanceUuid).toBeNull();
          expect((await fixedRow(db(), c)).instanceUuid).toBe(instance(3));
        },
      );

      it('honours fixed_ip_disassociate_timeout', async () => {
        const h = harness(db(), mode, { config: { fixed_ip_disassociate_timeout: '60' } });
        await h.manager.networks.create({ label: 's', fixedRangeV4: '10.0.0.0/24' });
        const a = firstAddress(await allocate(h, 1));
        await h.manager.allocation.deallocate(instance(1));
        h.clock.advance(30);
        expect(await h.manager.leases.disassociateStale()).toBe(0);
        h.clock.advance(31);
        expect(await h.manager.leases.disassociateStale()).toBe(dhcp ? 1 : 0);
        expect((await fixedRow(db(), a)).instanceUuid).toBeNull();
      });
    });
  });
});
