import { describe, expect, it } from 'vitest';
import type { Mode } from '../../src/config/options.js';
import { Conflict, FixedIpAlreadyInUse, FixedIpNotFound, Invalid, NoMoreFixedIps, NoMoreNetworks, NotFound } from '../../src/errors.js';
import type { RequestedNetwork } from '../../src/managers/requests.js';
import { BACKENDS } from '../support/databases.js';
import { snapshot } from '../support/dbState.js';
import {
  addressesOf,
  countRows,
  expectRefused,
  firstAddress,
  fixedRow,
  freeAddresses,
  freeInstance,
  type Harness,
  harness,
  instance,
  MODES,
  useDatabase,
} from '../support/managers.js';

/** First address an instance gets in a fresh 10.0.N.0/24 network of each mode. */
const FIRST_HOST: Record<Mode, number> = { flat: 2, flatdhcp: 2, vlan: 3 };

const MAC = /^fa:16:3e(:[0-9a-f]{2}){3}$/;

function allocate(h: Harness, n: number, extra: { projectId?: string; host?: string; hostname?: string } = {}) {
  return h.manager.allocation.allocate({
    instanceUuid: instance(n),
    projectId: extra.projectId ?? 'p1',
    host: extra.host ?? 'compute1',
    hostname: extra.hostname ?? `vm${n}`,
  });
}

/** Instance `n` of `projectId` on compute1, asking for `requestedNetworks` (and no hostname). */
function requesting(h: Harness, n: number, requestedNetworks: RequestedNetwork[], projectId = 'p1') {
  return h.manager.allocation.allocate({ instanceUuid: instance(n), projectId, host: 'compute1', requestedNetworks });
}

describe.each(BACKENDS)('allocation.allocate on %s', (backend) => {
  const db = useDatabase(backend);

  describe.each(MODES)('in %s mode', (mode) => {
    const first = FIRST_HOST[mode];
    const dhcp = mode !== 'flat';

    it('returns network_info: VIF, network, meta and the IPv4 subnet', async () => {
      const h = harness(db(), mode);
      const [network] = await h.manager.networks.create({
        label: 'private',
        fixedRangeV4: '10.0.0.0/24',
        dns1: '192.0.2.53',
        dns2: '192.0.2.54',
      });
      h.host.clear();
      const info = await allocate(h, 1);
      expect(info.instance_uuid).toBe(instance(1));
      expect(info.network_info).toHaveLength(1);
      const [vif] = info.network_info;
      expect(vif!.address).toMatch(MAC);
      expect(vif!.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(vif!.type).toBe('bridge');
      expect(vif!.devname).toBe(`tap${vif!.id.slice(0, 11)}`);
      // The host whose service plugs devname into the bridge (issue 17).
      expect(vif!.meta).toEqual({ host: 'compute1' });
      expect(vif!.network).toMatchObject({
        id: network!.uuid,
        label: 'private',
        bridge: 'br100',
        meta: {
          tenant_id: mode === 'vlan' ? 'p1' : null,
          injected: false,
          multi_host: false,
          should_create_bridge: mode !== 'flat',
          should_create_vlan: mode === 'vlan',
          bridge_interface: mode === 'flat' ? null : 'eth1',
          vlan: mode === 'vlan' ? 100 : null,
          mtu: null,
        },
      });
      expect(vif!.network.subnets).toEqual([
        {
          cidr: '10.0.0.0/24',
          version: 4,
          gateway: { address: '10.0.0.1', type: 'gateway', version: 4, meta: {} },
          dns: [
            { address: '192.0.2.53', type: 'dns', version: 4, meta: {} },
            { address: '192.0.2.54', type: 'dns', version: 4, meta: {} },
          ],
          ips: [{ address: `10.0.0.${first}`, type: 'fixed', version: 4, meta: {}, floating_ips: [] }],
          routes: [],
          meta: dhcp ? { dhcp_server: '10.0.0.1' } : {},
        },
      ]);
      expect(info.injected_config).toBeUndefined();
      // The database agrees.
      const row = await fixedRow(db(), `10.0.0.${first}`);
      expect(row).toMatchObject({ instanceUuid: instance(1), allocated: true, leased: false });
      const vifRow = (await db().knex('virtual_interfaces').where('instance_uuid', instance(1)).first()) as Record<string, unknown>;
      expect(vifRow).toMatchObject({ uuid: vif!.id, address: vif!.address, hostname: 'vm1', host: 'compute1', network_id: network!.id });
      expect(row.virtualInterfaceId).toBe(Number(vifRow.id));
      expect(h.host.changes).toEqual([{ kind: 'network-updated', networkId: network!.id }]);
    });

    it('tells the host of a network it already serves only the new DHCP host', async () => {
      const h = harness(db(), mode);
      const [network] = await h.manager.networks.create({ label: 'private', fixedRangeV4: '10.0.0.0/24' });
      await allocate(h, 1);
      h.host.clear();
      const info = await allocate(h, 2, { host: 'compute2' });
      const vif = info.network_info[0]!;
      expect(h.host.changes).toEqual([
        {
          kind: 'dhcp-host',
          networkId: network!.id,
          action: 'add',
          computeHost: 'compute2',
          entry: { mac: vif.address, hostname: 'vm2', address: vif.network.subnets[0]!.ips[0]!.address },
        },
      ]);
    });

    it('makes this host the network host of a single-host network', async () => {
      const h = harness(db(), mode);
      const [single] = await h.manager.networks.create({ label: 's', fixedRangeV4: '10.0.0.0/24' });
      await allocate(h, 1);
      expect((await h.manager.networks.get({ id: single!.id })).host).toBe('nethost');
    });

    it('adds the IPv6 subnet with the EUI-64 address of the MAC', async () => {
      const h = harness(db(), mode, { newMac: () => 'fa:16:3e:00:00:01' });
      await h.manager.networks.create({ label: 'dual', fixedRangeV4: '10.0.0.0/24', fixedRangeV6: 'fd00:1::/48' });
      const info = await allocate(h, 1);
      const subnets = info.network_info[0]!.network.subnets;
      expect(subnets.map((subnet) => subnet.version)).toEqual([4, 6]);
      expect(subnets[1]).toEqual({
        cidr: 'fd00:1::/64',
        version: 6,
        gateway: { address: 'fd00:1::1', type: 'gateway', version: 6, meta: {} },
        dns: [],
        ips: [{ address: 'fd00:1::f816:3eff:fe00:1', type: 'fixed', version: 6, meta: {} }],
        routes: [],
        meta: {},
      });
    });

    it('account_identifier: the project-and-MAC address in network_info, /servers and the DHCP entry', async () => {
      let mac = 0;
      const h = harness(db(), mode, {
        newMac: () => `02:16:3e:33:44:${String(55 + mac++)}`,
        config: { ipv6_backend: 'account_identifier' },
      });
      const [network] = await h.manager.networks.create({ label: 'dual', fixedRangeV4: '10.0.0.0/24', fixedRangeV6: '2001:db8::/48' });
      if (mode === 'vlan') await h.manager.networks.modify({ id: network!.id }, { project: 'test' });
      const allocated = (n: number) =>
        h.manager.allocation.allocate({ instanceUuid: instance(n), projectId: 'test', host: 'compute1', hostname: `vm${n}` });
      // sha1("test") begins a94a8fe5: nova's own example.
      const first = await allocated(1);
      expect(first.network_info[0]!.network.subnets[1]!.ips).toEqual([
        { address: '2001:db8::a94a:8fe5:ff33:4455', type: 'fixed', version: 6, meta: {} },
      ]);
      const [listed] = await h.manager.allocation.listInstances({ instanceUuid: instance(1) });
      expect(listed!.addresses.filter((entry) => entry.version === 6).map((entry) => entry.address)).toEqual([
        '2001:db8::a94a:8fe5:ff33:4455',
      ]);
      // The next VIF reaches the host as one DHCP entry, with the address DHCPv6 is to hand it.
      h.host.clear();
      await allocated(2);
      expect(h.host.changes).toMatchObject([
        { kind: 'dhcp-host', action: 'add', entry: { mac: '02:16:3e:33:44:56', addressV6: '2001:db8::a94a:8fe5:ff33:4456' } },
      ]);
    });

    it('gives one VIF per network, each with its own MAC and address (multinic)', async () => {
      const h = harness(db(), mode);
      const nets = await h.manager.networks.create({ label: 'multi', fixedRangeV4: '10.0.0.0/16', numNetworks: 3, networkSize: 256 });
      if (mode === 'vlan') {
        // A VLAN project gets the networks it owns.
        for (const network of nets) await h.manager.networks.modify({ id: network.id }, { project: 'p1' });
      }
      const info = await allocate(h, 1);
      expect(info.network_info.map((vif) => vif.network.id)).toEqual(nets.map((network) => network.uuid));
      expect(info.network_info.map((vif) => vif.network.label)).toEqual(['multi_0', 'multi_1', 'multi_2']);
      expect(addressesOf(info)).toEqual([0, 1, 2].map((n) => `10.0.${n}.${first}`));
      const macs = info.network_info.map((vif) => vif.address);
      expect(new Set(macs).size).toBe(3);
      for (const mac of macs) expect(mac).toMatch(MAC);
      expect(new Set(info.network_info.map((vif) => vif.id)).size).toBe(3);
      expect(await countRows(db(), 'virtual_interfaces', { instance_uuid: instance(1) })).toBe(3);
    });

    it('is idempotent: a second call returns the same info and takes nothing more', async () => {
      const h = harness(db(), mode);
      await h.manager.networks.create({ label: 'private', fixedRangeV4: '10.0.0.0/24' });
      const info = await allocate(h, 1);
      expect(info.project_id).toBe('p1');
      const before = await snapshot(db());
      const again = await allocate(h, 1);
      expect(again).toEqual(info);
      expect(await snapshot(db())).toEqual(before);
      expect(await h.manager.allocation.networkInfo(instance(1))).toEqual(info);
    });

    it('gives consecutive instances the next addresses', async () => {
      const h = harness(db(), mode);
      await h.manager.networks.create({ label: 'private', fixedRangeV4: '10.0.0.0/24' });
      const addresses = [];
      for (let n = 1; n <= 3; n++) addresses.push(firstAddress(await allocate(h, n)));
      expect(addresses).toEqual([first, first + 1, first + 2].map((octet) => `10.0.0.${octet}`));
    });

    it('puts the instance on a requested network at a requested address', async () => {
      const h = harness(db(), mode);
      const [a, b] = await h.manager.networks.create({
        label: 'req',
        fixedRangeV4: '10.0.0.0/16',
        numNetworks: 2,
        networkSize: 256,
        projectId: 'p1',
      });
      const info = await requesting(h, 1, [{ networkUuid: b!.uuid.toUpperCase(), address: '10.0.1.50' }]);
      expect(info.network_info.map((vif) => vif.network.id)).toEqual([b!.uuid]);
      expect(addressesOf(info)).toEqual(['10.0.1.50']);
      expect(await countRows(db(), 'fixed_ips', { network_id: a!.id, instance_uuid: instance(1) })).toBe(0);
      // Without an address, the next free one of the requested network.
      const other = await requesting(h, 2, [{ networkUuid: a!.uuid }]);
      expect(addressesOf(other)).toEqual([`10.0.0.${first}`]);
    });

    it('refuses a requested address already in use, changing nothing', async () => {
      const h = harness(db(), mode);
      const [network] = await h.manager.networks.create({ label: 'req', fixedRangeV4: '10.0.0.0/24', projectId: 'p1' });
      const requestedNetworks = [{ networkUuid: network!.uuid, address: '10.0.0.50' }];
      await requesting(h, 1, requestedNetworks);
      await expectRefused(db(), () => requesting(h, 2, requestedNetworks), FixedIpAlreadyInUse, /fixed IP 10\.0\.0\.50 is already in use/);
      // A reserved address (the gateway) is not available either.
      await expectRefused(
        db(),
        () => requesting(h, 2, [{ networkUuid: network!.uuid, address: '10.0.0.1' }]),
        FixedIpAlreadyInUse,
        /fixed IP 10\.0\.0\.1 is already in use/,
      );
    });

    it('refuses a requested address outside the requested network', async () => {
      const h = harness(db(), mode);
      const [network] = await h.manager.networks.create({ label: 'req', fixedRangeV4: '10.0.0.0/24', projectId: 'p1' });
      await expectRefused(
        db(),
        () => requesting(h, 1, [{ networkUuid: network!.uuid, address: '10.9.9.9' }]),
        FixedIpNotFound,
        // Named as the user knows it, never by its internal id (issue 16).
        /^fixed IP 10\.9\.9\.9 is not in network req \(10\.0\.0\.0\/24\)$/,
      );
    });

    it("refuses an unknown requested network, and another project's network", async () => {
      const h = harness(db(), mode);
      const [owned] = await h.manager.networks.create({ label: 'owned', fixedRangeV4: '10.0.0.0/24', projectId: 'p1' });
      await expectRefused(
        db(),
        () => requesting(h, 1, [{ networkUuid: '99999999-9999-4999-8999-999999999999' }]),
        NotFound,
        /network 99999999-9999-4999-8999-999999999999 not found for project p1/,
      );
      await expectRefused(
        db(),
        () => requesting(h, 1, [{ networkUuid: owned!.uuid }], 'p2'),
        NotFound,
        new RegExp(`network ${owned!.uuid} not found for project p2`),
      );
    });

    it.each([
      ['a malformed network uuid', [{ networkUuid: 'net-1' }], /requested_networks\[0\]\.uuid must be a UUID, got "net-1"/],
      [
        'a malformed address',
        [{ networkUuid: '99999999-9999-4999-8999-999999999999', address: '10.0.0.010' }],
        /requested_networks\[0\]\.fixed_ip must be an IPv4 address/,
      ],
      [
        'the same network twice',
        [{ networkUuid: '99999999-9999-4999-8999-999999999999' }, { networkUuid: '99999999-9999-4999-8999-999999999999' }],
        /names network 99999999-9999-4999-8999-999999999999 twice/,
      ],
    ])('refuses requested networks with %s', async (_name, requestedNetworks, message) => {
      const h = harness(db(), mode);
      await h.manager.networks.create({ label: 'x', fixedRangeV4: '10.0.0.0/24', projectId: 'p1' });
      await expectRefused(db(), () => requesting(h, 1, requestedNetworks), Invalid, message);
    });

    it('raises NoMoreFixedIps when the pool is exhausted, changing nothing', async () => {
      const h = harness(db(), mode);
      const [network] = await h.manager.networks.create({ label: 'tiny', fixedRangeV4: '10.0.0.0/29', networkSize: 8 });
      const pool = await freeAddresses(db(), network!.id);
      expect(pool).toHaveLength(mode === 'vlan' ? 4 : 5);
      const given = [];
      for (let n = 1; n <= pool.length; n++) given.push(firstAddress(await allocate(h, n)));
      expect(given).toEqual(pool);
      await expectRefused(db(), () => allocate(h, 99), NoMoreFixedIps, /^no more fixed IPs in network tiny \(10\.0\.0\.0\/29\)$/);
      expect(await h.manager.allocation.networkInfo(instance(99))).toEqual({
        instance_uuid: instance(99),
        project_id: null,
        network_info: [],
        security_groups: [],
      });
    });

    it('rolls back every VIF and address when one network of several is full', async () => {
      const h = harness(db(), mode);
      const [roomy, tiny] = await h.manager.networks.create({
        label: 'm',
        fixedRangeV4: '10.0.0.0/24',
        numNetworks: 2,
        networkSize: 8,
        projectId: 'p1',
      });
      for (const address of await freeAddresses(db(), tiny!.id)) await h.manager.fixedIps.reserve(address);
      await expectRefused(db(), () => allocate(h, 1), NoMoreFixedIps, /^no more fixed IPs in network m_1 \(10\.0\.0\.8\/29\)$/);
      expect(await freeAddresses(db(), roomy!.id)).toHaveLength(mode === 'vlan' ? 4 : 5);
    });

    it('tries another MAC when the MAC is taken', async () => {
      const macs = ['fa:16:3e:00:00:01', 'fa:16:3e:00:00:01', 'fa:16:3e:00:00:01', 'fa:16:3e:00:00:02'];
      const h = harness(db(), mode, { newMac: () => macs.shift()! });
      await h.manager.networks.create({ label: 'mac', fixedRangeV4: '10.0.0.0/24' });
      const one = await allocate(h, 1);
      const two = await allocate(h, 2);
      expect([one.network_info[0]!.address, two.network_info[0]!.address]).toEqual(['fa:16:3e:00:00:01', 'fa:16:3e:00:00:02']);
      expect(firstAddress(two)).toBe(`10.0.0.${first + 1}`);
    });

    it('gives up after five taken MACs with a Conflict, changing nothing', async () => {
      const h = harness(db(), mode, { newMac: () => 'fa:16:3e:00:00:01' });
      await h.manager.networks.create({ label: 'mac', fixedRangeV4: '10.0.0.0/24' });
      await allocate(h, 1);
      await expectRefused(db(), () => allocate(h, 2), Conflict, /could not find an unused MAC address in 5 attempts/);
    });

    it('gives concurrent calls for one instance one VIF and one address', async () => {
      const h = harness(db(), mode);
      await h.manager.networks.create({ label: 'race', fixedRangeV4: '10.0.0.0/24', projectId: 'p1' });
      const results = await Promise.all([1, 2, 3, 4].map(() => allocate(h, 1)));
      for (const result of results) expect(result).toEqual(results[0]);
      expect(addressesOf(results[0]!)).toHaveLength(1);
      expect(await countRows(db(), 'virtual_interfaces')).toBe(1);
      expect((await db().knex('fixed_ips').whereNotNull('instance_uuid')).length).toBe(1);
    });

    it('shares reads and writes between calls at once; each gets its own networks and addresses', async () => {
      const h = harness(db(), mode);
      await h.manager.networks.create({ label: 'many', fixedRangeV4: '10.0.0.0/16', numNetworks: 2, networkSize: 256 });
      const owner = (n: number) => (n % 2 === 0 ? 'p1' : 'p2');
      // The first instance of each project claims its networks (and their host): a path of its own.
      for (const n of [1, 2]) await allocate(h, n, { projectId: owner(n) });
      let queries = 0;
      const count = () => queries++;
      db().knex.on('query', count);
      // Instance 1 again (idempotent), and 40 new ones of two projects.
      const results = await Promise.all(
        [1, ...Array.from({ length: 40 }, (_, index) => index + 3)].map((n) => allocate(h, n, { projectId: owner(n) })),
      ).finally(() => db().knex.off('query', count));
      // Alone, a new instance costs seven statements.
      expect(queries).toBeLessThan(41 * 2);
      expect(results[0]).toEqual(await h.manager.allocation.networkInfo(instance(1)));
      for (const [index, result] of results.entries()) expect(result.project_id).toBe(owner(index === 0 ? 1 : index + 2));
      const addresses = [...results, await h.manager.allocation.networkInfo(instance(2))].flatMap((result) => addressesOf(result));
      expect(new Set(addresses).size).toBe(addresses.length);
      expect(addresses).toHaveLength(mode === 'vlan' ? 42 : 84);
      expect(await countRows(db(), 'virtual_interfaces')).toBe(addresses.length);
    });

    it('never hands out a reserved address', async () => {
      const h = harness(db(), mode);
      const [network] = await h.manager.networks.create({ label: 'tiny', fixedRangeV4: '10.0.0.0/29', networkSize: 8 });
      const pool = await freeAddresses(db(), network!.id);
      for (const address of pool.slice(0, -1)) await h.manager.fixedIps.reserve(address);
      expect(firstAddress(await allocate(h, 1))).toBe(pool.at(-1));
      await expectRefused(db(), () => allocate(h, 2), NoMoreFixedIps, /no more fixed IPs/);
    });

    it.each([
      ['instance uuid', { instanceUuid: 'not-a-uuid' }, /instance_uuid must be a UUID, got "not-a-uuid"/],
      ['project id', { projectId: 'p 1' }, /project_id must be 1-255 letters/],
      ['empty project id', { projectId: '' }, /project_id must be/],
      ['host', { host: 'compute 1' }, /host must be a DNS name/],
      ['host with a shell metacharacter', { host: 'compute1;reboot' }, /host must be a DNS name/],
      [
        'hostname with spaces',
        { hostname: 'my vm' },
        /hostname must be a DNS name \(letters, digits, '-', dots between labels\), got "my vm"/,
      ],
      ['hostname with $(...)', { hostname: 'vm$(reboot)' }, /hostname must be a DNS name/],
      ['hostname with a semicolon', { hostname: 'vm;rm' }, /hostname must be a DNS name/],
      ['hostname with a newline', { hostname: 'vm\nx' }, /hostname must be a DNS name/],
      ['hostname starting with a dash', { hostname: '-vm' }, /hostname must be a DNS name/],
    ])('refuses a bad %s, changing nothing', async (_name, override, message) => {
      const h = harness(db(), mode);
      await h.manager.networks.create({ label: 'private', fixedRangeV4: '10.0.0.0/24' });
      await expectRefused(
        db(),
        () => h.manager.allocation.allocate({ instanceUuid: instance(1), projectId: 'p1', host: 'compute1', hostname: 'vm1', ...override }),
        Invalid,
        message,
      );
      expect(h.host.kinds()).toEqual(['network-updated']);
    });

    it('refuses when there is no network at all', async () => {
      const h = harness(db(), mode);
      await expectRefused(db(), () => allocate(h, 1), NoMoreNetworks, /p1/);
    });

    it('accepts a DNS-name hostname and no hostname', async () => {
      const h = harness(db(), mode);
      await h.manager.networks.create({ label: 'private', fixedRangeV4: '10.0.0.0/24' });
      await allocate(h, 1, { hostname: 'web-01.example' });
      await h.manager.allocation.allocate({ instanceUuid: instance(2), projectId: 'p1', host: 'compute1' });
      const rows = (await db().knex('virtual_interfaces').orderBy('id').select('hostname')) as { hostname: string | null }[];
      expect(rows.map((row) => row.hostname)).toEqual(['web-01.example', null]);
    });
  });

  describe('least recently freed first', () => {
    it.each(MODES)('%s: never-used addresses first, then freed ones oldest first', async (mode) => {
      const h = harness(db(), mode);
      const [network] = await h.manager.networks.create({ label: 'lru', fixedRangeV4: '10.0.0.0/29', networkSize: 8 });
      const pool = await freeAddresses(db(), network!.id);
      h.clock.advance(10);
      const a = firstAddress(await allocate(h, 1));
      h.clock.advance(10);
      const b = firstAddress(await allocate(h, 2));
      h.clock.advance(10);
      await freeInstance(h, instance(2));
      h.clock.advance(10);
      await freeInstance(h, instance(1));
      expect([a, b]).toEqual(pool.slice(0, 2));
      const order = [];
      for (let n = 3; n < 3 + pool.length; n++) {
        h.clock.advance(10);
        order.push(firstAddress(await allocate(h, n)));
      }
      expect(order).toEqual([...pool.slice(2), b, a]);
    });
  });

  describe('VLAN networks belong to projects', () => {
    it("claims a free network on a project's first allocation and keeps using it", async () => {
      const h = harness(db(), 'vlan');
      const [n1, n2] = await h.manager.networks.create({ label: 'v', fixedRangeV4: '10.0.0.0/16', numNetworks: 2, networkSize: 256 });
      const first = await allocate(h, 1, { projectId: 'alpha' });
      expect(first.network_info.map((vif) => vif.network.id)).toEqual([n1!.uuid]);
      expect((await h.manager.networks.get({ id: n1!.id })).projectId).toBe('alpha');
      expect((await h.manager.networks.get({ id: n2!.id })).projectId).toBeNull();

      const again = await allocate(h, 2, { projectId: 'alpha' });
      expect(again.network_info[0]!.network.id).toBe(n1!.uuid);

      const other = await allocate(h, 3, { projectId: 'beta' });
      expect(other.network_info[0]!.network).toMatchObject({ id: n2!.uuid, meta: { tenant_id: 'beta', vlan: 101 }, bridge: 'br101' });
      expect(firstAddress(other)).toBe('10.0.1.3');
      expect((await h.manager.networks.get({ id: n2!.id })).projectId).toBe('beta');
    });

    it('raises NoMoreNetworks when no unowned network is left', async () => {
      const h = harness(db(), 'vlan');
      await h.manager.networks.create({ label: 'v', fixedRangeV4: '10.0.0.0/24' });
      await allocate(h, 1, { projectId: 'alpha' });
      await expectRefused(
        db(),
        () => allocate(h, 2, { projectId: 'beta' }),
        NoMoreNetworks,
        /no unassociated network is left for project beta/,
      );
    });

    it('uses a network created for the project directly', async () => {
      const h = harness(db(), 'vlan');
      await h.manager.networks.create({ label: 'free', fixedRangeV4: '10.0.0.0/24' });
      const [own] = await h.manager.networks.create({ label: 'own', fixedRangeV4: '10.0.1.0/24', projectId: 'alpha' });
      const info = await allocate(h, 1, { projectId: 'alpha' });
      expect(info.network_info.map((vif) => vif.network.id)).toEqual([own!.uuid]);
      expect(await h.manager.networks.list({ projectId: 'alpha' })).toHaveLength(1);
    });
  });

  describe('flat networks and projects', () => {
    it.each(['flat', 'flatdhcp'] as const)('%s: a network of project X is not used for project Y', async (mode) => {
      const h = harness(db(), mode);
      const [ofX] = await h.manager.networks.create({ label: 'x-only', fixedRangeV4: '10.0.0.0/24', projectId: 'x' });
      const [shared] = await h.manager.networks.create({ label: 'shared', fixedRangeV4: '10.0.1.0/24' });
      const forY = await allocate(h, 1, { projectId: 'y' });
      expect(forY.network_info.map((vif) => vif.network.id)).toEqual([shared!.uuid]);
      const forX = await allocate(h, 2, { projectId: 'x' });
      expect(forX.network_info.map((vif) => vif.network.id)).toEqual([ofX!.uuid, shared!.uuid]);
      expect(forX.network_info[0]!.network.meta.tenant_id).toBe('x');
      // The shared network stays shared.
      expect((await h.manager.networks.get({ id: shared!.id })).projectId).toBeNull();
    });

    it.each(['flat', 'flatdhcp'] as const)("%s: NoMoreNetworks when only other projects' networks exist", async (mode) => {
      const h = harness(db(), mode);
      await h.manager.networks.create({ label: 'x-only', fixedRangeV4: '10.0.0.0/24', projectId: 'x' });
      await expectRefused(db(), () => allocate(h, 1, { projectId: 'y' }), NoMoreNetworks, /no network is available to project y/);
    });

    it('flat_injected: injected_config carries the address in Debian interfaces syntax', async () => {
      const h = harness(db(), 'flat', { config: { flat_injected: 'true' }, newMac: () => 'fa:16:3e:aa:bb:cc' });
      await h.manager.networks.create({ label: 'inj', fixedRangeV4: '10.0.0.0/24' });
      const info = await allocate(h, 1);
      expect(info.network_info[0]!.network.meta.injected).toBe(true);
      const text = info.injected_config!;
      expect(text).toContain('auto eth0');
      expect(text).toContain('iface eth0 inet static');
      expect(text).toContain('hwaddress ether fa:16:3e:aa:bb:cc');
      expect(text).toMatch(/^\s+address 10\.0\.0\.2$/m);
      expect(text).toMatch(/^\s+netmask 255\.255\.255\.0$/m);
      expect(text).toMatch(/^\s+gateway 10\.0\.0\.1$/m);
      expect(text).toMatch(/^\s+dns-nameservers 8\.8\.4\.4$/m);
      expect((await h.manager.allocation.networkInfo(instance(1))).injected_config).toBe(text);
    });
  });
});

describe.each(BACKENDS)('deallocation on %s', (backend) => {
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
          security_groups: [],
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

      it('frees an instance with five statements besides BEGIN and COMMIT: its VIFs and their fixed IPs are one read', async () => {
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
          // Its security group memberships.
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
  });
});
