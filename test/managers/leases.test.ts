/** The leases service: dnsmasq's lease and release reports, and freeing addresses deallocated longer than the timeout ago. */
import { describe, expect, it } from 'vitest';
import { FixedIpNotFound, Invalid } from '../../src/errors.js';
import { BACKENDS } from '../support/databases.js';
import { snapshot } from '../support/dbState.js';
import { expectRefused, firstAddress, fixedRow, type Harness, harness, instance, MODES, useDatabase } from '../support/managers.js';

function allocate(h: Harness, n: number) {
  return h.manager.allocation.allocate({ instanceUuid: instance(n), projectId: 'p1', host: 'compute1', hostname: `vm${n}` });
}

describe.each(BACKENDS)('leases on %s', (backend) => {
  const db = useDatabase(backend);

  describe.each(MODES)('in %s mode', (mode) => {
    const dhcp = mode !== 'flat';

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
