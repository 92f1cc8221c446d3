/** networks.create in each mode: the layout src/managers/plan.ts computes (gateway, DHCP range, reserved addresses, VLANs, bridges) and the rows written. */
import { describe, expect, it } from 'vitest';
import type { Mode } from '../../src/config/options.js';
import { Invalid } from '../../src/errors.js';
import { BACKENDS } from '../support/databases.js';
import { countRows, expectRefused, fixedRows, freeAddresses, harness, MODES, reservedAddresses, useDatabase } from '../support/managers.js';

/** What a default 10.0.0.0/24 network looks like in each mode. */
const LAYOUT: Record<Mode, { reserved: string[]; dhcpStart: string; vpnPrivate: string | null }> = {
  flat: { reserved: ['10.0.0.0', '10.0.0.1', '10.0.0.255'], dhcpStart: '10.0.0.2', vpnPrivate: null },
  flatdhcp: { reserved: ['10.0.0.0', '10.0.0.1', '10.0.0.255'], dhcpStart: '10.0.0.2', vpnPrivate: null },
  vlan: { reserved: ['10.0.0.0', '10.0.0.1', '10.0.0.2', '10.0.0.255'], dhcpStart: '10.0.0.3', vpnPrivate: '10.0.0.2' },
};

describe.each(BACKENDS)('networks.create on %s', (backend) => {
  const db = useDatabase(backend);

  describe.each(MODES)('in %s mode', (mode) => {
    it('lays out one network: gateway, DHCP server, DHCP start, reserved addresses, one row per address', async () => {
      const h = harness(db(), mode);
      const [created, ...rest] = await h.manager.networks.create({ label: 'private', fixedRangeV4: '10.0.0.0/24' });
      expect(rest).toEqual([]);
      const network = await h.manager.networks.get({ id: created!.id });
      expect(network).toMatchObject({
        label: 'private',
        cidr: '10.0.0.0/24',
        netmask: '255.255.255.0',
        broadcast: '10.0.0.255',
        gateway: '10.0.0.1',
        dhcpServer: '10.0.0.1',
        dhcpStart: LAYOUT[mode].dhcpStart,
        vpnPrivateAddress: LAYOUT[mode].vpnPrivate,
        cidrV6: null,
        gatewayV6: null,
        projectId: null,
        priority: null,
        mtu: null,
        host: null,
        multiHost: false,
        injected: false,
        enableDhcp: true,
        shareAddress: false,
      });
      expect(network.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(created).toMatchObject({ id: network.id, uuid: network.uuid, cidr: network.cidr, dhcpStart: network.dhcpStart });
      const rows = await fixedRows(db(), network.id);
      expect(rows).toHaveLength(256);
      expect(rows[0]!.address).toBe('10.0.0.0');
      expect(rows[255]!.address).toBe('10.0.0.255');
      expect(rows.every((row) => row.instanceUuid === null && !row.allocated && !row.leased)).toBe(true);
      expect(await reservedAddresses(db(), network.id)).toEqual(LAYOUT[mode].reserved);
      expect(h.host.changes).toEqual([{ kind: 'network-updated', networkId: network.id }]);
    });

    it('takes the network host up front (issue 17), and refuses one for a multi_host network', async () => {
      const h = harness(db(), mode);
      const [network] = await h.manager.networks.create({ label: 'hosted', fixedRangeV4: '10.0.0.0/24', host: 'net2' });
      expect(network!.host).toBe('net2');
      await expectRefused(
        db(),
        () => h.manager.networks.create({ label: 'mh', fixedRangeV4: '10.1.0.0/24', host: 'net2', multiHost: true }),
        Invalid,
        /^host names the network host of a single-host network; a multi_host network has none$/,
      );
      await expectRefused(
        db(),
        () => h.manager.networks.create({ label: 'x', fixedRangeV4: '10.1.0.0/24', host: 'net_2' }),
        Invalid,
        /^host must be a DNS name/,
      );
    });

    it('keeps cnt_vpn_clients addresses at the top in VLAN mode only', async () => {
      const h = harness(db(), mode, { config: { cnt_vpn_clients: '2' } });
      const [network] = await h.manager.networks.create({ label: 'private', fixedRangeV4: '10.0.0.0/24' });
      const expected =
        mode === 'vlan' ? [...LAYOUT.vlan.reserved.slice(0, 3), '10.0.0.253', '10.0.0.254', '10.0.0.255'] : LAYOUT[mode].reserved;
      expect(await reservedAddresses(db(), network!.id)).toEqual(expected);
    });

    it('names networks label_N when num_networks > 1, one subnet of network_size each', async () => {
      const h = harness(db(), mode);
      const created = await h.manager.networks.create({ label: 'pool', fixedRangeV4: '10.0.0.0/24', numNetworks: 3, networkSize: 64 });
      expect(created.map((network) => [network.label, network.cidr, network.gateway, network.broadcast])).toEqual([
        ['pool_0', '10.0.0.0/26', '10.0.0.1', '10.0.0.63'],
        ['pool_1', '10.0.0.64/26', '10.0.0.65', '10.0.0.127'],
        ['pool_2', '10.0.0.128/26', '10.0.0.129', '10.0.0.191'],
      ]);
      for (const network of created) {
        expect(network.netmask).toBe('255.255.255.192');
        expect(await countRows(db(), 'fixed_ips', { network_id: network.id })).toBe(64);
      }
      expect(new Set(created.map((network) => network.uuid)).size).toBe(3);
      expect(await countRows(db(), 'networks')).toBe(3);
      expect(h.host.kinds()).toEqual(['network-updated', 'network-updated', 'network-updated']);
    });

    it('takes num_networks and network_size from the config when not given', async () => {
      const h = harness(db(), mode, { config: { num_networks: '2', network_size: '32' } });
      const created = await h.manager.networks.create({ label: 'cfg', fixedRangeV4: '10.0.0.0/24' });
      expect(created.map((network) => network.cidr)).toEqual(['10.0.0.0/27', '10.0.0.32/27']);
      expect(created.map((network) => network.label)).toEqual(['cfg_0', 'cfg_1']);
    });

    it('makes the fixed_ips row count equal the subnet size, rounding network_size up', async () => {
      const h = harness(db(), mode);
      const [network] = await h.manager.networks.create({ label: 'odd', fixedRangeV4: '10.0.0.0/24', networkSize: 100 });
      expect(network!.cidr).toBe('10.0.0.0/25');
      expect(await countRows(db(), 'fixed_ips', { network_id: network!.id })).toBe(128);
    });

    it('uses an explicit --gateway and keeps it reserved', async () => {
      const h = harness(db(), mode);
      const [network] = await h.manager.networks.create({ label: 'gw', fixedRangeV4: '10.0.0.0/24', gateway: '10.0.0.254' });
      expect(network).toMatchObject({ gateway: '10.0.0.254', dhcpServer: '10.0.0.254', dhcpStart: LAYOUT[mode].dhcpStart });
      const bottom = LAYOUT[mode].reserved.slice(0, -1);
      expect(await reservedAddresses(db(), network!.id)).toEqual([...bottom, '10.0.0.254', '10.0.0.255']);
    });

    it('uses an explicit --dhcp_server and starts DHCP after it', async () => {
      const h = harness(db(), mode);
      const [network] = await h.manager.networks.create({ label: 'dhcp', fixedRangeV4: '10.0.0.0/24', dhcpServer: '10.0.0.2' });
      if (mode === 'vlan') {
        expect(network).toMatchObject({
          gateway: '10.0.0.1',
          dhcpServer: '10.0.0.2',
          vpnPrivateAddress: '10.0.0.3',
          dhcpStart: '10.0.0.4',
        });
        expect(await reservedAddresses(db(), network!.id)).toEqual(['10.0.0.0', '10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.255']);
      } else {
        expect(network).toMatchObject({ gateway: '10.0.0.1', dhcpServer: '10.0.0.2', dhcpStart: '10.0.0.3' });
        expect(await reservedAddresses(db(), network!.id)).toEqual(['10.0.0.0', '10.0.0.1', '10.0.0.2', '10.0.0.255']);
      }
    });

    it('reserves the addresses outside --fixed_cidr', async () => {
      const h = harness(db(), mode);
      const [network] = await h.manager.networks.create({ label: 'fc', fixedRangeV4: '10.0.0.0/24', fixedCidr: '10.0.0.0/25' });
      const free = await freeAddresses(db(), network!.id);
      expect(free[0]).toBe(LAYOUT[mode].dhcpStart);
      expect(free.at(-1)).toBe('10.0.0.127');
      expect(free).toHaveLength(128 - LAYOUT[mode].reserved.length + 1);
      const reserved = await reservedAddresses(db(), network!.id);
      expect(reserved).toContain('10.0.0.128');
      expect(reserved).toContain('10.0.0.200');
    });

    it('starts DHCP inside --fixed_cidr when it excludes the bottom of the subnet', async () => {
      const h = harness(db(), mode);
      const [network] = await h.manager.networks.create({ label: 'fc', fixedRangeV4: '10.0.0.0/24', fixedCidr: '10.0.0.128/25' });
      expect(network!.dhcpStart).toBe('10.0.0.128');
      const free = await freeAddresses(db(), network!.id);
      expect(free[0]).toBe('10.0.0.128');
      expect(free.at(-1)).toBe('10.0.0.254');
    });

    it('gives each network a /64 of fixed_range_v6 and its ::1 gateway', async () => {
      const h = harness(db(), mode);
      const created = await h.manager.networks.create({
        label: 'v6',
        fixedRangeV4: '10.0.0.0/24',
        numNetworks: 2,
        networkSize: 128,
        fixedRangeV6: 'fd00:1::/48',
      });
      expect(created.map((network) => [network.cidrV6, network.gatewayV6, network.netmaskV6])).toEqual([
        ['fd00:1::/64', 'fd00:1::1', '64'],
        ['fd00:1:0:1::/64', 'fd00:1:0:1::1', '64'],
      ]);
      // Only IPv4 addresses are rows; IPv6 ones come from SLAAC.
      expect(await countRows(db(), 'fixed_ips')).toBe(256);
      const [next] = await h.manager.networks.create({ label: 'v6b', fixedRangeV4: '10.0.1.0/24', fixedRangeV6: 'fd00:1::/48' });
      expect(next!.cidrV6).toBe('fd00:1:0:2::/64');
    });

    it('takes an explicit --gateway_v6, and fixed_range_v6 from the config with use_ipv6', async () => {
      const h = harness(db(), mode, { config: { use_ipv6: 'true', fixed_range_v6: 'fd12:3456::/48' } });
      const [network] = await h.manager.networks.create({ label: 'v6', fixedRangeV4: '10.0.0.0/24', gatewayV6: 'fd12:3456::fffe' });
      expect(network).toMatchObject({ cidrV6: 'fd12:3456::/64', gatewayV6: 'fd12:3456::fffe' });
    });

    it('stores --uuid, --project_id, --priority, --mtu and the DNS servers', async () => {
      const h = harness(db(), mode);
      const uuid = '6A0B2F7E-0C6D-4D7E-9C1B-3F8E2D1C0B9A';
      await h.manager.networks.create({
        label: 'tenant',
        fixedRangeV4: '10.0.0.0/24',
        uuid,
        projectId: 'proj-1',
        priority: 5,
        mtu: 1400,
        dns1: '192.0.2.53',
        dns2: '192.0.2.54',
      });
      const network = await h.manager.networks.get({ uuid: uuid.toLowerCase() });
      expect(network).toMatchObject({
        uuid: uuid.toLowerCase(),
        projectId: 'proj-1',
        priority: 5,
        mtu: 1400,
        dns1: '192.0.2.53',
        dns2: '192.0.2.54',
      });
      expect(await h.manager.networks.list({ projectId: 'proj-1' })).toHaveLength(1);
      expect(await h.manager.networks.list({ projectId: 'other' })).toHaveLength(0);
    });

    it('takes multi_host from the config unless given', async () => {
      const multi = harness(db(), mode, { config: { multi_host: 'true' } });
      const [a] = await multi.manager.networks.create({ label: 'a', fixedRangeV4: '10.0.0.0/24' });
      const [b] = await multi.manager.networks.create({ label: 'b', fixedRangeV4: '10.0.1.0/24', multiHost: false });
      const [c] = await harness(db(), mode).manager.networks.create({ label: 'c', fixedRangeV4: '10.0.2.0/24', multiHost: true });
      expect([a!.multiHost, b!.multiHost, c!.multiHost]).toEqual([true, false, true]);
      expect((await multi.manager.networks.get({ id: a!.id })).multiHost).toBe(true);
    });

    it('moves past an existing network in the range instead of failing', async () => {
      const h = harness(db(), mode);
      await h.manager.networks.create({ label: 'first', fixedRangeV4: '10.0.0.0/24' });
      const [second] = await h.manager.networks.create({ label: 'second', fixedRangeV4: '10.0.0.0/16', networkSize: 256 });
      expect(second!.cidr).toBe('10.0.1.0/24');
      expect(second!.gateway).toBe('10.0.1.1');
    });

    it('can reuse the range of a deleted network', async () => {
      const h = harness(db(), mode);
      const [old] = await h.manager.networks.create({ label: 'old', fixedRangeV4: '10.0.0.0/24' });
      await h.manager.networks.delete({ id: old!.id });
      const [again] = await h.manager.networks.create({ label: 'again', fixedRangeV4: '10.0.0.0/24' });
      expect(again!.cidr).toBe('10.0.0.0/24');
      expect(again!.id).not.toBe(old!.id);
      if (mode === 'vlan') expect(again!.vlan).toBe(old!.vlan);
      expect(await countRows(db(), 'fixed_ips')).toBe(256);
    });

    it('reports progress of the bulk insert', async () => {
      const h = harness(db(), mode);
      const seen: [number, number][] = [];
      await h.manager.networks.create({
        label: 'p',
        fixedRangeV4: '10.0.0.0/24',
        numNetworks: 2,
        networkSize: 128,
        onProgress: (written, total) => seen.push([written, total]),
      });
      expect(seen.at(-1)).toEqual([256, 256]);
      expect(seen.every(([, total]) => total === 256)).toBe(true);
    });
  });

  describe('flat modes', () => {
    it.each(['flat', 'flatdhcp'] as const)('%s: uses flat_network_bridge, flat_interface and flat_network_dns', async (mode) => {
      const h = harness(db(), mode, { config: { flat_network_bridge: 'br200', flat_interface: 'eth3', flat_network_dns: '192.0.2.1' } });
      const [network] = await h.manager.networks.create({ label: 'f', fixedRangeV4: '10.0.0.0/24' });
      expect(network).toMatchObject({
        bridge: 'br200',
        bridgeInterface: 'eth3',
        dns1: '192.0.2.1',
        vlan: null,
        vpnPublicPort: null,
        vpnPublicAddress: null,
      });
    });

    it.each(['flat', 'flatdhcp'] as const)('%s: explicit --bridge, --bridge_interface and --dns1 win', async (mode) => {
      const h = harness(db(), mode);
      const [network] = await h.manager.networks.create({
        label: 'f',
        fixedRangeV4: '10.0.0.0/24',
        bridge: 'brflat',
        bridgeInterface: 'eth9',
        dns1: '192.0.2.99',
      });
      expect(network).toMatchObject({ bridge: 'brflat', bridgeInterface: 'eth9', dns1: '192.0.2.99' });
    });

    it('flat: no flat_interface means no bridge interface', async () => {
      const [network] = await harness(db(), 'flat').manager.networks.create({ label: 'f', fixedRangeV4: '10.0.0.0/24' });
      expect(network).toMatchObject({ bridge: 'br100', bridgeInterface: null, dns1: '8.8.4.4' });
    });

    it('flat_injected marks new networks injected', async () => {
      const [network] = await harness(db(), 'flat', { config: { flat_injected: 'true' } }).manager.networks.create({
        label: 'f',
        fixedRangeV4: '10.0.0.0/24',
      });
      expect(network!.injected).toBe(true);
    });
  });

  describe('VLAN mode', () => {
    it('assigns VLAN ids, brNNN bridges and VPN ports from vlan_start and vpn_start', async () => {
      const h = harness(db(), 'vlan');
      const created = await h.manager.networks.create({ label: 'v', fixedRangeV4: '10.0.0.0/16', numNetworks: 3, networkSize: 256 });
      expect(created.map((network) => [network.vlan, network.bridge, network.vpnPublicPort])).toEqual([
        [100, 'br100', 1000],
        [101, 'br101', 1001],
        [102, 'br102', 1002],
      ]);
      for (const network of created) {
        expect(network).toMatchObject({ bridgeInterface: 'eth1', vpnPublicAddress: '192.0.2.10', dns1: null, projectId: null });
      }
      const [more] = await h.manager.networks.create({ label: 'w', fixedRangeV4: '10.0.0.0/16', networkSize: 256 });
      expect(more).toMatchObject({ cidr: '10.0.3.0/24', vlan: 103, bridge: 'br103', vpnPublicPort: 1003 });
    });

    it('skips VLAN ids already used', async () => {
      const h = harness(db(), 'vlan');
      await h.manager.networks.create({ label: 'explicit', fixedRangeV4: '10.1.0.0/24', vlan: 101 });
      const created = await h.manager.networks.create({ label: 'auto', fixedRangeV4: '10.0.0.0/16', numNetworks: 2, networkSize: 256 });
      expect(created.map((network) => network.vlan)).toEqual([100, 102]);
      expect(created.map((network) => network.bridge)).toEqual(['br100', 'br102']);
    });

    it('takes vlan_start from the request or the config', async () => {
      const h = harness(db(), 'vlan', { config: { vlan_start: '500' } });
      const [fromConfig] = await h.manager.networks.create({ label: 'a', fixedRangeV4: '10.0.0.0/24' });
      const [fromRequest] = await h.manager.networks.create({ label: 'b', fixedRangeV4: '10.0.1.0/24', vlanStart: 700 });
      expect([fromConfig!.vlan, fromRequest!.vlan]).toEqual([500, 700]);
    });

    it('uses an explicit --vlan and --bridge', async () => {
      const h = harness(db(), 'vlan');
      const [network] = await h.manager.networks.create({
        label: 'x',
        fixedRangeV4: '10.0.0.0/24',
        vlan: 300,
        bridge: 'brpublic',
        bridgeInterface: 'bond0',
      });
      expect(network).toMatchObject({ vlan: 300, bridge: 'brpublic', bridgeInterface: 'bond0' });
      const [auto] = await h.manager.networks.create({ label: 'y', fixedRangeV4: '10.0.1.0/24', vlan: 301 });
      expect(auto!.bridge).toBe('br301');
    });

    it('goes up to VLAN 4094', async () => {
      const h = harness(db(), 'vlan');
      const created = await h.manager.networks.create({
        label: 'top',
        fixedRangeV4: '10.0.0.0/24',
        numNetworks: 2,
        networkSize: 128,
        vlanStart: 4093,
      });
      expect(created.map((network) => network.vlan)).toEqual([4093, 4094]);
      const [explicit] = await h.manager.networks.create({ label: 'one', fixedRangeV4: '10.0.1.0/24', vlan: 1 });
      expect(explicit!.vlan).toBe(1);
    });

    it('keeps VPN ports unique from vpn_start', async () => {
      const h = harness(db(), 'vlan', { config: { vpn_start: '2000' } });
      const [a] = await h.manager.networks.create({ label: 'a', fixedRangeV4: '10.0.0.0/24' });
      const [b] = await h.manager.networks.create({ label: 'b', fixedRangeV4: '10.0.1.0/24', vpnStart: 2000 });
      const [c] = await h.manager.networks.create({ label: 'c', fixedRangeV4: '10.0.2.0/24', vpnStart: 3000 });
      expect([a!.vpnPublicPort, b!.vpnPublicPort, c!.vpnPublicPort]).toEqual([2000, 2001, 3000]);
    });

    it('builds VLANs on flat_interface when vlan_interface is not set', async () => {
      const h = harness(db(), 'vlan', { config: { vlan_interface: '', flat_interface: 'eth7' } });
      const [network] = await h.manager.networks.create({ label: 'a', fixedRangeV4: '10.0.0.0/24' });
      expect(network!.bridgeInterface).toBe('eth7');
    });
  });
});
