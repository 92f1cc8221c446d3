import { describe, expect, it } from 'vitest';
import {
  CidrConflict,
  Conflict,
  FloatingIpAssociated,
  FloatingIpNotAssociated,
  FloatingIpNotFound,
  FloatingIpPoolNotFound,
  Forbidden,
  Invalid,
  NoMoreFloatingIps,
  NotFound,
  QuotaExceeded,
} from '../../src/errors.js';
import { BACKENDS } from '../support/databases.js';
import { expectRefused, firstAddress, type Harness, harness, instance, useDatabase } from '../support/managers.js';

interface FloatingRow {
  address: string;
  project_id: string | null;
  fixed_ip_id: number | null;
  host: string | null;
  auto_assigned: boolean;
  pool: string;
  interface: string | null;
}

describe.each(BACKENDS)('floating IPs on %s', (backend) => {
  const db = useDatabase(backend);

  async function rows(): Promise<FloatingRow[]> {
    const all = (await db().knex('floating_ips').orderBy('id')) as Record<string, unknown>[];
    return all.map((row) => ({
      address: String(row.address),
      project_id: (row.project_id as string | null) ?? null,
      fixed_ip_id: row.fixed_ip_id === null ? null : Number(row.fixed_ip_id),
      host: (row.host as string | null) ?? null,
      auto_assigned: row.auto_assigned === 1 || row.auto_assigned === true,
      pool: String(row.pool),
      interface: (row.interface as string | null) ?? null,
    }));
  }

  async function row(address: string): Promise<FloatingRow> {
    const found = (await rows()).find((entry) => entry.address === address);
    if (!found) throw new Error(`no floating_ips row for ${address}`);
    return found;
  }

  /** A FlatDHCP network 10.0.0.0/24 and a /29 pool "nova" (6 addresses, 203.0.113.1-6). */
  async function setup(config: Record<string, string> = {}, multiHost = false): Promise<Harness> {
    const h = harness(db(), 'flatdhcp', { config });
    await h.manager.networks.create({ label: 'net', fixedRangeV4: '10.0.0.0/24', multiHost });
    await h.manager.floating.createRange('203.0.113.0/29');
    h.host.clear();
    return h;
  }

  function boot(h: Harness, n: number, projectId = 'p1', host = 'compute1') {
    return h.manager.allocation.allocate({ instanceUuid: instance(n), projectId, host, hostname: `vm${n}` });
  }

  describe('pools', () => {
    it('creates a CIDR range without its network and broadcast addresses', async () => {
      const h = harness(db(), 'flatdhcp');
      expect(await h.manager.floating.createRange('203.0.113.0/29', 'public', 'eth3')).toEqual({
        count: 6,
        pool: 'public',
        interface: 'eth3',
      });
      expect((await rows()).map((entry) => entry.address)).toEqual([
        '203.0.113.1',
        '203.0.113.2',
        '203.0.113.3',
        '203.0.113.4',
        '203.0.113.5',
        '203.0.113.6',
      ]);
      expect((await rows()).every((entry) => entry.pool === 'public' && entry.interface === 'eth3' && entry.project_id === null)).toBe(
        true,
      );
      expect(h.host.changes).toEqual([]);
    });

    it('creates a single address in the default pool, and lists pools', async () => {
      const h = harness(db(), 'flatdhcp');
      await expect(h.manager.floating.createRange(' 198.51.100.7 ')).rejects.toThrow(/^ip_range must be an IPv4 address/);
      expect(await h.manager.floating.createRange('198.51.100.7')).toEqual({ count: 1, pool: 'nova', interface: null });
      await h.manager.floating.createRange('203.0.113.0/30', 'other');
      expect(await row('198.51.100.7')).toMatchObject({ pool: 'nova', interface: null });
      expect(await h.manager.floating.listPools()).toEqual(['nova', 'other']);
    });

    it('bulk-inserts ranges larger than one INSERT batch', async () => {
      const h = harness(db(), 'flatdhcp');
      expect((await h.manager.floating.createRange('198.18.0.0/21')).count).toBe(2046);
      expect((await h.manager.floating.list()).length).toBe(2046);
    });

    it('refuses bad ranges, pools and interfaces', async () => {
      const h = harness(db(), 'flatdhcp');
      await expectRefused(
        db(),
        () => h.manager.floating.createRange('203.0.113.1/29'),
        Invalid,
        /host bits set; the network is 203\.0\.113\.0\/29/,
      );
      await expectRefused(
        db(),
        () => h.manager.floating.createRange('203.0.113.0/31'),
        Invalid,
        /fewer than 4 addresses; give a single address/,
      );
      await expectRefused(
        db(),
        () => h.manager.floating.createRange('10.0.0.0/12'),
        Invalid,
        /would make 1048576 addresses.*longer prefix than \/12/,
      );
      await expectRefused(db(), () => h.manager.floating.createRange('2001:db8::/64'), Invalid, /ip_range must be an IPv4 address/);
      await expectRefused(db(), () => h.manager.floating.createRange('nonsense'), Invalid, /ip_range must be an IPv4 address/);
      await expectRefused(
        db(),
        () => h.manager.floating.createRange('203.0.113.0/29', 'bad\npool'),
        Invalid,
        /pool must not contain control characters/,
      );
      await expectRefused(
        db(),
        () => h.manager.floating.createRange('203.0.113.0/29', 'nova', 'eth0; reboot'),
        Invalid,
        /interface must be an interface name/,
      );
    });

    it('refuses ranges that overlap a fixed network or existing floating IPs', async () => {
      const h = await setup();
      await expectRefused(
        db(),
        () => h.manager.floating.createRange('10.0.0.0/16'),
        CidrConflict,
        /ip_range 10\.0\.0\.0\/16 overlaps fixed network 10\.0\.0\.0\/24 \(net\)/,
      );
      await expectRefused(db(), () => h.manager.floating.createRange('10.0.0.77'), CidrConflict, /overlaps fixed network 10\.0\.0\.0\/24/);
      await expectRefused(
        db(),
        () => h.manager.floating.createRange('203.0.113.0/28', 'other'),
        CidrConflict,
        /overlaps existing floating IP 203\.0\.113\.1 \(pool nova\)/,
      );
      await expectRefused(
        db(),
        () => h.manager.floating.createRange('203.0.113.6'),
        CidrConflict,
        /overlaps existing floating IP 203\.0\.113\.6/,
      );
    });

    // Issue 16, cause 4: associating 127.0.0.1 once sent the host's own local connections to a VM.
    it.each([
      ['0.0.0.0', /ip_range 0\.0\.0\.0 is in "this network" \(0\.0\.0\.0\/8\)/],
      ['255.255.255.255', /ip_range 255\.255\.255\.255 is in the limited broadcast address/],
      ['224.0.0.1', /ip_range 224\.0\.0\.1 is in multicast \(224\.0\.0\.0\/4\)/],
      ['127.0.0.1', /ip_range 127\.0\.0\.1 is in loopback \(127\.0\.0\.0\/8\)/],
      ['169.254.169.254', /ip_range 169\.254\.169\.254 is in link-local/],
      ['127.0.0.0/29', /ip_range 127\.0\.0\.0\/29 overlaps loopback/],
      ['192.0.2.10', /ip_range 192\.0\.2\.10 is this host's my_ip/],
      ['192.0.2.8/29', /ip_range 192\.0\.2\.8\/29 holds 192\.0\.2\.10, this host's my_ip/],
    ])('refuses the special-purpose or host address %s, naming the rule', async (range, message) => {
      const h = await setup();
      await expectRefused(db(), () => h.manager.floating.createRange(range), Invalid, message);
    });

    it.each(['routing_source_ip', 'metadata_host', 'vpn_ip'] as const)('refuses the host address in %s', async (option) => {
      const h = harness(db(), 'flatdhcp', { config: { [option]: '198.51.100.77' } });
      await expectRefused(db(), () => h.manager.floating.createRange('198.51.100.77'), Invalid, new RegExp(`this host's ${option}`));
    });

    it('refuses a fixed network that would take in a floating IP, whatever its prefix', async () => {
      const h = await setup();
      await expectRefused(
        db(),
        () => h.manager.networks.create({ label: 'x', fixedRangeV4: '203.0.113.0/24' }),
        CidrConflict,
        /network 203\.0\.113\.0\/24 overlaps floating IP 203\.0\.113\.1 \(pool nova\)/,
      );
      await expectRefused(
        db(),
        () => h.manager.networks.create({ label: 'x', fixedRangeV4: '203.0.113.4/30', networkSize: 4 }),
        CidrConflict,
        /overlaps floating IP 203\.0\.113\.4/,
      );
      await expectRefused(
        db(),
        () => h.manager.networks.create({ label: 'x', fixedRangeV4: '203.0.112.0/23', networkSize: 512 }),
        CidrConflict,
        /overlaps floating IP/,
      );
      // Next door is fine.
      expect(await h.manager.networks.create({ label: 'y', fixedRangeV4: '203.0.113.8/29', networkSize: 8 })).toHaveLength(1);
    });

    it('deletes a range, refusing while an address is allocated', async () => {
      const h = await setup();
      const taken = await h.manager.floating.allocate('p1');
      await expectRefused(
        db(),
        () => h.manager.floating.deleteRange('203.0.113.0/29'),
        Conflict,
        new RegExp(`floating IP ${taken.address.replace(/\./g, '\\.')} is allocated to project p1; release it first`),
      );
      await expectRefused(
        db(),
        () => h.manager.floating.deleteRange('198.51.100.0/24'),
        FloatingIpNotFound,
        /no floating IP in 198\.51\.100\.0\/24/,
      );
      await h.manager.floating.release(taken.address, { projectId: 'p1' });
      expect(await h.manager.floating.deleteRange('203.0.113.0/29')).toBe(6);
      expect(await rows()).toEqual([]);
      expect(await h.manager.floating.listPools()).toEqual([]);
    });

    it('deletes a single address', async () => {
      const h = await setup();
      expect(await h.manager.floating.deleteRange('203.0.113.3')).toBe(1);
      expect((await rows()).map((entry) => entry.address)).not.toContain('203.0.113.3');
    });
  });

  describe('allocation and release', () => {
    it('allocates the lowest free address of the pool and releases it', async () => {
      const h = await setup();
      const first = await h.manager.floating.allocate('p1');
      expect(first).toMatchObject({ address: '203.0.113.1', projectId: 'p1', pool: 'nova', instanceUuid: null, autoAssigned: false });
      expect((await h.manager.floating.allocate('p2', 'nova')).address).toBe('203.0.113.2');
      expect((await h.manager.floating.list({ projectId: 'p1' })).map((entry) => entry.address)).toEqual(['203.0.113.1']);
      await h.manager.floating.release('203.0.113.1', { projectId: 'p1' });
      expect(await row('203.0.113.1')).toMatchObject({ project_id: null });
      await h.manager.floating.release('203.0.113.2', 'admin');
      expect(await row('203.0.113.2')).toMatchObject({ project_id: null });
    });

    it('refuses an unknown pool', async () => {
      const h = await setup();
      await expectRefused(
        db(),
        () => h.manager.floating.allocate('p1', 'nowhere'),
        FloatingIpPoolNotFound,
        /^floating IP pool nowhere not found$/,
      );
    });

    it('refuses when the pool is exhausted (NoMoreFloatingIps, a NotFound as in nova)', async () => {
      const h = await setup({ quota_floating_ips: '-1' });
      for (let n = 0; n < 6; n++) await h.manager.floating.allocate('p1');
      const error = await expectRefused(
        db(),
        () => h.manager.floating.allocate('p2'),
        NoMoreFloatingIps,
        /no more floating IPs in pool nova/,
      );
      expect(error).toBeInstanceOf(NotFound);
    });

    it('refuses over quota, from config or from the quotas table', async () => {
      const h = await setup({ quota_floating_ips: '2' });
      await h.manager.floating.allocate('p1');
      await h.manager.floating.allocate('p1');
      await expectRefused(
        db(),
        () => h.manager.floating.allocate('p1'),
        QuotaExceeded,
        /^Quota exceeded for floating_ips: Requested 1, but already used 2 of 2 floating_ips \(project p1\)$/,
      );
      // A project's own limit overrides the default, both ways; -1 is unlimited.
      await db()
        .knex('quotas')
        .insert([
          { project_id: 'p2', resource: 'floating_ips', hard_limit: 0 },
          { project_id: 'p3', resource: 'floating_ips', hard_limit: -1 },
        ]);
      await expectRefused(db(), () => h.manager.floating.allocate('p2'), QuotaExceeded, /already used 0 of 0 floating_ips/);
      for (let n = 0; n < 3; n++) await h.manager.floating.allocate('p3');
      expect((await h.manager.floating.list({ projectId: 'p3' })).length).toBe(3);
    });

    it("refuses to release another project's address or an unallocated one, without saying whose", async () => {
      const h = await setup();
      const taken = await h.manager.floating.allocate('p1');
      await expectRefused(
        db(),
        () => h.manager.floating.release(taken.address, { projectId: 'p2' }),
        FloatingIpNotFound,
        /^floating IP 203\.0\.113\.1 not found for project p2$/,
      );
      await expectRefused(
        db(),
        () => h.manager.floating.release('203.0.113.5', { projectId: 'p2' }),
        FloatingIpNotFound,
        /not found for project p2/,
      );
      await expectRefused(
        db(),
        () => h.manager.floating.release('203.0.113.5', 'admin'),
        FloatingIpNotFound,
        /not allocated to any project/,
      );
      await expectRefused(
        db(),
        () => h.manager.floating.release('192.0.2.99', 'admin'),
        FloatingIpNotFound,
        /^floating IP 192\.0\.2\.99 not found$/,
      );
    });

    it('refuses to release an associated address', async () => {
      const h = await setup();
      const info = await boot(h, 1);
      const taken = await h.manager.floating.allocate('p1');
      await h.manager.floating.associate({ address: taken.address, instanceUuid: instance(1), actor: { projectId: 'p1' } });
      await expectRefused(
        db(),
        () => h.manager.floating.release(taken.address, { projectId: 'p1' }),
        FloatingIpAssociated,
        new RegExp(`associated with fixed IP ${firstAddress(info).replace(/\./g, '\\.')}; disassociate it first`),
      );
    });
  });

  describe('association', () => {
    it('associates with the instance, bound on the network host', async () => {
      const h = await setup();
      const info = await boot(h, 1);
      const taken = await h.manager.floating.allocate('p1');
      h.host.clear();
      const associated = await h.manager.floating.associate({
        address: taken.address,
        instanceUuid: instance(1),
        actor: { projectId: 'p1' },
      });
      expect(associated).toMatchObject({
        address: '203.0.113.1',
        instanceUuid: instance(1),
        fixedAddress: firstAddress(info),
        host: 'nethost',
        projectId: 'p1',
      });
      expect(h.host.changes).toEqual([{ kind: 'floating-updated', address: '203.0.113.1' }]);
      expect(await h.manager.floating.list({ host: 'nethost' })).toEqual([associated]);
      expect(await h.manager.floating.list({ host: 'elsewhere' })).toEqual([]);
      // Again, to the same fixed IP: nothing changes, nothing is emitted.
      h.host.clear();
      await h.manager.floating.associate({
        address: taken.address,
        instanceUuid: instance(1),
        fixedAddress: firstAddress(info),
        actor: { projectId: 'p1' },
      });
      expect(h.host.changes).toEqual([]);
    });

    it("shows in the instance's network_info under its fixed IP, and goes with disassociation", async () => {
      const h = await setup();
      await boot(h, 1);
      const taken = await h.manager.floating.allocate('p1');
      await h.manager.floating.associate({ address: taken.address, instanceUuid: instance(1), actor: { projectId: 'p1' } });
      const fixedIp = async () => (await h.manager.allocation.networkInfo(instance(1))).network_info[0]!.network.subnets[0]!.ips[0]!;
      expect((await fixedIp()).floating_ips).toEqual([{ address: '203.0.113.1', type: 'floating', version: 4, meta: {} }]);
      await h.manager.floating.disassociate(taken.address, { projectId: 'p1' });
      expect((await fixedIp()).floating_ips).toEqual([]);
    });

    it("is bound on the instance's host in a multi_host network", async () => {
      const h = await setup({}, true);
      await boot(h, 1, 'p1', 'compute7');
      const taken = await h.manager.floating.allocate('p1');
      const associated = await h.manager.floating.associate({
        address: taken.address,
        instanceUuid: instance(1),
        actor: { projectId: 'p1' },
      });
      expect(associated.host).toBe('compute7');
      expect((await row(taken.address)).host).toBe('compute7');
    });

    it('moves with its instance to another host in a multi_host network (re-allocation after a migration)', async () => {
      const h = await setup({}, true);
      const before = await boot(h, 1, 'p1', 'compute7');
      const taken = await h.manager.floating.allocate('p1');
      await h.manager.floating.associate({ address: taken.address, instanceUuid: instance(1), actor: { projectId: 'p1' } });
      h.host.clear();
      const after = await boot(h, 1, 'p1', 'compute8');
      // Same fixed IP, the new host's own address as gateway, the floating IP bound there.
      expect(firstAddress(after)).toBe(firstAddress(before));
      const gateway = (info: typeof after) => info.network_info[0]!.network.subnets[0]!.gateway?.address;
      expect(gateway(after)).not.toBe(gateway(before));
      expect((await row(taken.address)).host).toBe('compute8');
      expect(h.host.changes).toContainEqual({ kind: 'floating-updated', address: taken.address });
      expect(h.host.kinds()).toContain('network-updated');
      expect((await db().knex('virtual_interfaces').where('instance_uuid', instance(1)).first('host')) as { host: string }).toEqual({
        host: 'compute8',
      });
      // Allocating again on the same host changes nothing.
      h.host.clear();
      await boot(h, 1, 'p1', 'compute8');
      expect(h.host.changes).toEqual([]);
    });

    it('stays on the network host in a single-host network when its instance moves', async () => {
      const h = await setup();
      await boot(h, 1, 'p1', 'compute7');
      const taken = await h.manager.floating.allocate('p1');
      await h.manager.floating.associate({ address: taken.address, instanceUuid: instance(1), actor: { projectId: 'p1' } });
      await boot(h, 1, 'p1', 'compute8');
      expect((await row(taken.address)).host).toBe('nethost');
    });

    it('refuses an address not allocated to the project, and a foreign instance', async () => {
      const h = await setup();
      await boot(h, 1, 'p1');
      await boot(h, 2, 'p2');
      const mine = await h.manager.floating.allocate('p1');
      const theirs = await h.manager.floating.allocate('p2');
      h.host.clear();
      await expectRefused(
        db(),
        () => h.manager.floating.associate({ address: theirs.address, instanceUuid: instance(1), actor: { projectId: 'p1' } }),
        FloatingIpNotFound,
        /^floating IP 203\.0\.113\.2 not found for project p1$/,
      );
      await expectRefused(
        db(),
        () => h.manager.floating.associate({ address: '203.0.113.6', instanceUuid: instance(1), actor: { projectId: 'p1' } }),
        FloatingIpNotFound,
        /not found for project p1/,
      );
      await expectRefused(
        db(),
        () => h.manager.floating.associate({ address: mine.address, instanceUuid: instance(2), actor: { projectId: 'p1' } }),
        NotFound,
        /instance .*0002 not found/,
      );
      await expectRefused(
        db(),
        () => h.manager.floating.associate({ address: mine.address, instanceUuid: instance(2), actor: 'admin' }),
        Conflict,
        /belongs to project p1, instance .* to project p2/,
      );
      await expectRefused(
        db(),
        () =>
          h.manager.floating.associate({
            address: mine.address,
            instanceUuid: instance(1),
            fixedAddress: '10.0.0.200',
            actor: { projectId: 'p1' },
          }),
        Invalid,
        /fixed IP 10\.0\.0\.200 does not belong to instance/,
      );
      expect(h.host.changes).toEqual([]);
    });

    it('moves an address associated elsewhere only when allowed', async () => {
      const h = await setup();
      await boot(h, 1);
      const second = await boot(h, 2);
      const taken = await h.manager.floating.allocate('p1');
      await h.manager.floating.associate({ address: taken.address, instanceUuid: instance(1), actor: { projectId: 'p1' } });
      await expectRefused(
        db(),
        () => h.manager.floating.associate({ address: taken.address, instanceUuid: instance(2), actor: { projectId: 'p1' } }),
        FloatingIpAssociated,
        /already associated with fixed IP .* of instance .*0001; disassociate it first or allow the move/,
      );
      const moved = await h.manager.floating.associate({
        address: taken.address,
        instanceUuid: instance(2),
        actor: { projectId: 'p1' },
        allowMove: true,
      });
      expect(moved).toMatchObject({ instanceUuid: instance(2), fixedAddress: firstAddress(second) });
    });

    it('disassociates, and refuses an unassociated or foreign address', async () => {
      const h = await setup();
      await boot(h, 1);
      const taken = await h.manager.floating.allocate('p1');
      await expectRefused(
        db(),
        () => h.manager.floating.disassociate(taken.address, { projectId: 'p1' }),
        FloatingIpNotAssociated,
        /^floating IP 203\.0\.113\.1 is not associated$/,
      );
      await h.manager.floating.associate({ address: taken.address, instanceUuid: instance(1), actor: { projectId: 'p1' } });
      await expectRefused(
        db(),
        () => h.manager.floating.disassociate(taken.address, { projectId: 'p2' }),
        FloatingIpNotFound,
        /not found for project p2/,
      );
      h.host.clear();
      const freed = await h.manager.floating.disassociate(taken.address, { projectId: 'p1' });
      expect(freed).toMatchObject({ instanceUuid: null, fixedAddress: null, host: null, projectId: 'p1' });
      expect(await row(taken.address)).toMatchObject({ fixed_ip_id: null, host: null, project_id: 'p1' });
      expect(h.host.changes).toEqual([{ kind: 'floating-updated', address: taken.address }]);
    });

    it('disassociates every address of a deallocated instance, keeping it allocated', async () => {
      const h = await setup();
      await boot(h, 1);
      const taken = await h.manager.floating.allocate('p1');
      await h.manager.floating.associate({ address: taken.address, instanceUuid: instance(1), actor: { projectId: 'p1' } });
      h.host.clear();
      await h.manager.allocation.deallocate(instance(1));
      expect(await row(taken.address)).toMatchObject({ fixed_ip_id: null, host: null, project_id: 'p1' });
      expect(h.host.changes).toContainEqual({ kind: 'floating-updated', address: taken.address });
    });

    it('never leaves a floating IP on a freed address when an association races the deallocation', async () => {
      // Found while planning the crash test's bursts: the floating IPs were detached in a
      // transaction of their own before the deallocation, so an association committed
      // between the two survived on the freed fixed IP (every round did, on both backends).
      const h = await setup({ quota_floating_ips: '-1' });
      for (let n = 1; n <= 5; n++) {
        await boot(h, n);
        const taken = await h.manager.floating.allocate('p1');
        await Promise.allSettled([
          h.manager.allocation.deallocate(instance(n)),
          h.manager.floating.associate({ address: taken.address, instanceUuid: instance(n), actor: 'admin' }),
        ]);
        const dangling = await db()
          .knex('floating_ips')
          .join('fixed_ips', 'floating_ips.fixed_ip_id', 'fixed_ips.id')
          .where('fixed_ips.allocated', false)
          .select('floating_ips.address');
        expect(dangling, `round ${n}`).toEqual([]);
      }
    });
  });

  describe('auto_assign_floating_ip', () => {
    it('assigns one at allocate, outside the quota, and releases it at deallocate', async () => {
      const h = await setup({ auto_assign_floating_ip: 'true', quota_floating_ips: '0' });
      const info = await boot(h, 1);
      const [assigned] = await h.manager.floating.list({ projectId: 'p1' });
      expect(assigned).toMatchObject({
        address: '203.0.113.1',
        autoAssigned: true,
        instanceUuid: instance(1),
        fixedAddress: firstAddress(info),
        host: 'nethost',
      });
      // The allocation's own answer already has it.
      expect(info.network_info[0]!.network.subnets[0]!.ips[0]!.floating_ips).toEqual([
        { address: '203.0.113.1', type: 'floating', version: 4, meta: {} },
      ]);
      expect(h.host.changes).toContainEqual({ kind: 'floating-updated', address: '203.0.113.1' });
      // Quota 0 and auto-assigned exempt: a manual allocation is still refused.
      await expectRefused(db(), () => h.manager.floating.allocate('p1'), QuotaExceeded, /already used 0 of 0/);
      await expectRefused(db(), () => h.manager.floating.disassociate('203.0.113.1', { projectId: 'p1' }), Forbidden, /auto-assigned/);
      await expectRefused(db(), () => h.manager.floating.release('203.0.113.1', 'admin'), FloatingIpAssociated, /disassociate it first/);
      // A repeated allocate call is idempotent and takes no second address.
      await boot(h, 1);
      expect((await rows()).filter((entry) => entry.project_id !== null).length).toBe(1);
      await h.manager.allocation.deallocate(instance(1));
      expect(await row('203.0.113.1')).toMatchObject({ project_id: null, fixed_ip_id: null, host: null, auto_assigned: false });
    });

    it('still boots the instance when the pool is empty, and logs it', async () => {
      const h = harness(db(), 'flatdhcp', { config: { auto_assign_floating_ip: 'true' } });
      await h.manager.networks.create({ label: 'net', fixedRangeV4: '10.0.0.0/24' });
      const info = await boot(h, 1);
      expect(firstAddress(info)).toMatch(/^10\.0\.0\./);
      expect(h.logs.join('\n')).toMatch(/no floating IP left in pool nova/);
    });
  });
});
