import { describe, expect, it } from 'vitest';
import { Conflict, FixedIpNotFound, Invalid } from '../../src/errors.js';
import { BACKENDS } from '../support/databases.js';
import { expectRefused, firstAddress, fixedRow, type Harness, harness, instance, MODES, useDatabase } from '../support/managers.js';

function allocate(h: Harness, n: number, host = 'compute1') {
  return h.manager.allocation.allocate({ instanceUuid: instance(n), projectId: 'p1', host, hostname: `vm${n}` });
}

describe.each(BACKENDS)('fixed IPs on %s', (backend) => {
  const db = useDatabase(backend);

  describe.each(MODES)('in %s mode', (mode) => {
    it('reserves and unreserves a free address', async () => {
      const h = harness(db(), mode);
      const [network] = await h.manager.networks.create({ label: 'r', fixedRangeV4: '10.0.0.0/24' });
      h.host.clear();
      const reserved = await h.manager.fixedIps.reserve('10.0.0.100');
      expect(reserved).toMatchObject({ address: '10.0.0.100', reserved: true, networkId: network!.id });
      expect((await fixedRow(db(), '10.0.0.100')).reserved).toBe(true);
      expect(h.host.changes).toEqual([{ kind: 'network-updated', networkId: network!.id }]);
      // Reserving twice is harmless.
      await h.manager.fixedIps.reserve('10.0.0.100');
      await expect(h.manager.fixedIps.unreserve(' 10.0.0.100 ')).rejects.toThrow(/must be an IP address/);
      const freed = await h.manager.fixedIps.unreserve('10.0.0.100');
      expect(freed.reserved).toBe(false);
      expect((await fixedRow(db(), '10.0.0.100')).reserved).toBe(false);
    });

    it('lets an unreserved address be allocated again', async () => {
      const h = harness(db(), mode);
      await h.manager.networks.create({
        label: 'r',
        fixedRangeV4: '10.0.0.0/30',
        networkSize: 4,
        ...(mode === 'vlan' ? { fixedRangeV4: '10.0.0.0/29', networkSize: 8 } : {}),
      });
      const info = await allocate(h, 1);
      const address = firstAddress(info);
      await h.manager.allocation.deallocate(instance(1));
      if (mode !== 'flat') await h.manager.leases.release(address);
      await h.manager.fixedIps.reserve(address);
      await h.manager.fixedIps.unreserve(address);
      expect(await fixedRow(db(), address)).toMatchObject({ reserved: false, instanceUuid: null });
    });

    it('refuses to reserve an address held by an instance', async () => {
      const h = harness(db(), mode);
      await h.manager.networks.create({ label: 'r', fixedRangeV4: '10.0.0.0/24' });
      const address = firstAddress(await allocate(h, 1));
      const message = new RegExp(`fixed IP ${address.replace(/\./g, '\\.')} is in use by instance ${instance(1)}; deallocate it first`);
      await expectRefused(db(), () => h.manager.fixedIps.reserve(address), Conflict, message);
      if (mode !== 'flat') {
        // Still held after deallocation until the lease is released.
        await h.manager.allocation.deallocate(instance(1));
        await expectRefused(db(), () => h.manager.fixedIps.reserve(address), Conflict, /is in use by instance/);
      }
    });

    it('refuses to unreserve the addresses a network needs', async () => {
      const h = harness(db(), mode);
      await h.manager.networks.create({ label: 'r', fixedRangeV4: '10.0.0.0/24', gateway: '10.0.0.1', dhcpServer: '10.0.0.10' });
      const cases: [string, RegExp][] = [
        ['10.0.0.0', /fixed IP 10\.0\.0\.0 is the network address of network 10\.0\.0\.0\/24; it stays reserved/],
        ['10.0.0.255', /fixed IP 10\.0\.0\.255 is the broadcast address of network 10\.0\.0\.0\/24/],
        ['10.0.0.1', /fixed IP 10\.0\.0\.1 is the gateway of network 10\.0\.0\.0\/24/],
        ['10.0.0.10', /fixed IP 10\.0\.0\.10 is the DHCP server of network 10\.0\.0\.0\/24/],
      ];
      if (mode === 'vlan') cases.push(['10.0.0.2', /fixed IP 10\.0\.0\.2 is the VPN address of network 10\.0\.0\.0\/24/]);
      for (const [address, message] of cases) {
        await expectRefused(db(), () => h.manager.fixedIps.unreserve(address), Conflict, message);
        expect((await fixedRow(db(), address)).reserved).toBe(true);
      }
    });

    it('refuses unknown and malformed addresses', async () => {
      const h = harness(db(), mode);
      await h.manager.networks.create({ label: 'r', fixedRangeV4: '10.0.0.0/24' });
      await expectRefused(
        db(),
        () => h.manager.fixedIps.reserve('10.0.1.5'),
        FixedIpNotFound,
        /fixed IP 10\.0\.1\.5 not found in any network/,
      );
      await expectRefused(db(), () => h.manager.fixedIps.unreserve('10.0.1.5'), FixedIpNotFound, /fixed IP 10\.0\.1\.5 not found/);
      await expectRefused(
        db(),
        () => h.manager.fixedIps.reserve('10.0.0.05'),
        Invalid,
        /address must be an IP address, got "10\.0\.0\.05"/,
      );
    });

    it('lists fixed IPs with hostname, host and instance, filtered by host', async () => {
      const h = harness(db(), mode);
      await h.manager.networks.create({ label: 'l', fixedRangeV4: '10.0.0.0/28', networkSize: 16 });
      const a = firstAddress(await allocate(h, 1, 'compute1'));
      const b = firstAddress(await allocate(h, 2, 'compute2'));
      const all = await h.manager.fixedIps.list();
      expect(all).toHaveLength(16);
      expect(all[0]).toMatchObject({ network: '10.0.0.0/28', address: '10.0.0.0', reserved: true, instanceUuid: null, hostname: null });
      expect(all.find((row) => row.address === b)).toMatchObject({
        hostname: 'vm2',
        host: 'compute2',
        instanceUuid: instance(2),
        allocated: true,
        leased: false,
      });
      const onCompute1 = await h.manager.fixedIps.list({ host: 'compute1' });
      expect(onCompute1).toEqual([
        {
          network: '10.0.0.0/28',
          address: a,
          hostname: 'vm1',
          host: 'compute1',
          instanceUuid: instance(1),
          reserved: false,
          allocated: true,
          leased: false,
        },
      ]);
      expect(await h.manager.fixedIps.list({ host: 'compute9' })).toEqual([]);
    });

    it('lists nothing without networks, and not the addresses of deleted networks', async () => {
      const h = harness(db(), mode);
      expect(await h.manager.fixedIps.list()).toEqual([]);
      const [gone] = await h.manager.networks.create({ label: 'gone', fixedRangeV4: '10.0.0.0/28', networkSize: 16 });
      await h.manager.networks.create({ label: 'kept', fixedRangeV4: '10.0.1.0/28', networkSize: 16 });
      await h.manager.networks.delete({ id: gone!.id });
      const rows = await h.manager.fixedIps.list();
      expect(rows).toHaveLength(16);
      expect(rows.every((row) => row.network === '10.0.1.0/28')).toBe(true);
    });
  });
});

describe.each(BACKENDS)('usage on %s', (backend) => {
  const db = useDatabase(backend);

  it.each(MODES)("counts every network's addresses: all, reserved, held, allocated, leased (%s)", async (mode) => {
    const h = harness(db(), mode);
    const [a, b] = await h.manager.networks.create({
      label: 'u',
      fixedRangeV4: '10.0.0.0/24',
      numNetworks: 2,
      networkSize: 128,
      projectId: 'p1',
    });
    const info = await h.manager.allocation.allocate({
      instanceUuid: instance(1),
      projectId: 'p1',
      host: 'compute1',
      requestedNetworks: [{ networkUuid: a!.uuid }],
    });
    await h.manager.allocation.allocate({
      instanceUuid: instance(2),
      projectId: 'p1',
      host: 'compute1',
      requestedNetworks: [{ networkUuid: a!.uuid }],
    });
    await h.manager.leases.lease(firstAddress(info));
    const reserved = mode === 'vlan' ? 4 : 3;
    expect(await h.manager.fixedIps.usage()).toEqual([
      { network: expect.objectContaining({ id: a!.id }), usage: { total: 128, reserved, associated: 2, allocated: 2, leased: 1 } },
      { network: expect.objectContaining({ id: b!.id }), usage: { total: 128, reserved, associated: 0, allocated: 0, leased: 0 } },
    ]);
  });
});

/** What os-fixed-ips show asks of the service: one fixed IP by address. */
describe.each(BACKENDS)('fixedIps.get on %s', (backend) => {
  const db = useDatabase(backend);

  describe.each(MODES)('in %s mode', (mode) => {
    it('getFixedIp: the address with its network, holder and reserved flag, as fixed list has it', async () => {
      const h = harness(db(), mode);
      await h.manager.networks.create({ label: 'a', fixedRangeV4: '10.0.0.0/24' });
      const info = await h.manager.allocation.allocate({ instanceUuid: instance(1), projectId: 'p1', host: 'compute1', hostname: 'vm1' });
      const address = firstAddress(info);
      const held = await h.manager.fixedIps.get(address);
      expect(held).toEqual({
        network: '10.0.0.0/24',
        address,
        hostname: 'vm1',
        host: 'compute1',
        instanceUuid: instance(1),
        reserved: false,
        allocated: true,
        leased: false,
      });
      expect(held).toEqual((await h.manager.fixedIps.list()).find((row) => row.address === address));
      expect(await h.manager.fixedIps.get('10.0.0.0')).toMatchObject({
        address: '10.0.0.0',
        reserved: true,
        hostname: null,
        host: null,
        instanceUuid: null,
      });
    });

    it('getFixedIp refuses unknown and malformed addresses', async () => {
      const h = harness(db(), mode);
      await h.manager.networks.create({ label: 'a', fixedRangeV4: '10.0.0.0/24' });
      await expectRefused(db(), () => h.manager.fixedIps.get('10.1.0.1'), FixedIpNotFound, /fixed IP 10\.1\.0\.1 not found in any network/);
      await expectRefused(db(), () => h.manager.fixedIps.get('10.1.0'), Invalid, /address must be an IP address/);
    });
  });
});
