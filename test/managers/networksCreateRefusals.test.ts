/** What networks.create refuses, naming the field and the rule, and that a refusal changes nothing (src/managers/plan.ts, the mode policies, src/ipam/plan.ts). */
import { describe, expect, it } from 'vitest';
import type { Mode } from '../../src/config/options.js';
import { CidrConflict, Conflict, DuplicateVlan, Invalid } from '../../src/errors.js';
import type { CreateNetworksRequest } from '../../src/managers/requests.js';
import { BACKENDS } from '../support/databases.js';
import { expectRefused, type HarnessOptions, harness, MODES, useDatabase } from '../support/managers.js';

const EXISTING_UUID = '11111111-2222-4333-8444-555555555555';

type ErrorClass = abstract new (...args: never[]) => Error;
type Case = [name: string, request: Partial<CreateNetworksRequest>, errorClass: ErrorClass, message: RegExp];

/** Refusals every mode shares; each create is otherwise valid (label "new", 10.1.0.0/24). */
const COMMON: Case[] = [
  ['missing fixed_range_v4', { fixedRangeV4: undefined }, Invalid, /fixed_range_v4 is required/],
  [
    'malformed CIDR',
    { fixedRangeV4: '10.1.0.0-24' },
    Invalid,
    /fixed_range_v4 must be a CIDR such as 10\.0\.0\.0\/24, got "10\.1\.0\.0-24"/,
  ],
  ['octal address in the CIDR', { fixedRangeV4: '010.1.0.0/24' }, Invalid, /fixed_range_v4 must be an IPv4 address/],
  ['IPv6 range as fixed_range_v4', { fixedRangeV4: 'fd00::/64' }, Invalid, /fixed_range_v4 must be an IPv4 address/],
  ['prefix too long', { fixedRangeV4: '10.1.0.0/33' }, Invalid, /fixed_range_v4 prefix \/33 is longer than \/32/],
  [
    'host bits set',
    { fixedRangeV4: '10.1.0.7/24' },
    Invalid,
    /fixed_range_v4 "10\.1\.0\.7\/24" has host bits set; the network is 10\.1\.0\.0\/24/,
  ],
  [
    'num_networks x network_size larger than the range',
    { numNetworks: 2, networkSize: 256 },
    Invalid,
    /2 networks of 256 addresses do not fit in fixed_range_v4 10\.1\.0\.0\/24 \(room for 1\)/,
  ],
  [
    'network_size larger than the range',
    { networkSize: 1024 },
    Invalid,
    /network_size 1024 does not fit in fixed_range_v4 10\.1\.0\.0\/24/,
  ],
  ['num_networks 0', { numNetworks: 0 }, Invalid, /num_networks must be an integer from 1 to 4094, got "0"/],
  ['num_networks not an integer', { numNetworks: 1.5 }, Invalid, /num_networks must be an integer/],
  ['network_size below 4', { networkSize: 2 }, Invalid, /network_size must be an integer from 4 to 16777216, got "2"/],
  [
    'range equal to an existing network',
    { fixedRangeV4: '10.0.0.0/24' },
    CidrConflict,
    /fixed_range_v4 10\.0\.0\.0\/24 has room for only 0 more network\(s\) of 256 addresses; 1 requested/,
  ],
  [
    'range inside an existing network',
    { fixedRangeV4: '10.0.0.128/25', networkSize: 128 },
    CidrConflict,
    /10\.0\.0\.128\/25 lies inside 10\.0\.0\.0\/24 of network existing/,
  ],
  [
    'not enough free subnets left',
    { fixedRangeV4: '10.0.0.0/23', numNetworks: 2, networkSize: 256 },
    CidrConflict,
    /has room for only 1 more network\(s\) of 256 addresses; 2 requested/,
  ],
  ['bad dns1', { dns1: '8.8.8' }, Invalid, /dns1 must be an IPv4 address, got "8\.8\.8"/],
  ['bad dns2', { dns2: 'dns.example.com' }, Invalid, /dns2 must be an IPv4 address, got "dns\.example\.com"/],
  ['IPv6 dns1', { dns1: '2001:4860:4860::8888' }, Invalid, /dns1 must be an IPv4 address/],
  ['malformed gateway', { gateway: '10.1.0' }, Invalid, /gateway must be an IPv4 address, got "10\.1\.0"/],
  ['gateway outside the subnet', { gateway: '10.2.0.1' }, Invalid, /gateway 10\.2\.0\.1 is not a usable address of 10\.1\.0\.0\/24/],
  ['gateway on the network address', { gateway: '10.1.0.0' }, Invalid, /gateway 10\.1\.0\.0 is not a usable address of 10\.1\.0\.0\/24/],
  ['gateway on the broadcast address', { gateway: '10.1.0.255' }, Invalid, /gateway 10\.1\.0\.255 is not a usable address/],
  [
    'dhcp_server outside the subnet',
    { dhcpServer: '10.9.0.1' },
    Invalid,
    /dhcp_server 10\.9\.0\.1 is not a usable address of 10\.1\.0\.0\/24/,
  ],
  [
    'gateway with num_networks > 1',
    { gateway: '10.1.0.1', numNetworks: 2, networkSize: 128 },
    Invalid,
    /--gateway applies to one network; it cannot be used with num_networks=2/,
  ],
  [
    'gateway_v6 with num_networks > 1',
    { gatewayV6: 'fd00::1', numNetworks: 2, networkSize: 128 },
    Invalid,
    /--gateway_v6 applies to one network/,
  ],
  [
    'uuid with num_networks > 1',
    { uuid: '0f0f0f0f-0000-4000-8000-000000000001', numNetworks: 2, networkSize: 128 },
    Invalid,
    /--uuid applies to one network/,
  ],
  ['bad uuid', { uuid: 'not-a-uuid' }, Invalid, /uuid must be a UUID, got "not-a-uuid"/],
  [
    'duplicate uuid',
    { uuid: EXISTING_UUID.toUpperCase() },
    Conflict,
    /uuid 11111111-2222-4333-8444-555555555555 is already used by network "existing"/,
  ],
  ['empty label', { label: '' }, Invalid, /label must be 1 to 255 characters, got 0/],
  ['label too long', { label: 'x'.repeat(256) }, Invalid, /label must be 1 to 255 characters, got 256/],
  ['label with a newline', { label: 'two\nlines' }, Invalid, /label must not contain control characters, newlines/],
  ['label with a control character', { label: 'bell\u0007' }, Invalid, /label must not contain control characters/],
  [
    'bad project id',
    { projectId: 'my project' },
    Invalid,
    /project_id must be 1-255 letters, digits, '_', '\.', '@' or '-', got "my project"/,
  ],
  ['project id with shell metacharacters', { projectId: 'p1;reboot' }, Invalid, /project_id must be/],
  ['negative priority', { priority: -1 }, Invalid, /priority must be an integer from 0 to 2147483647, got "-1"/],
  ['mtu too small', { mtu: 40 }, Invalid, /mtu must be an integer from 68 to 65535, got "40"/],
  [
    'fixed_cidr outside fixed_range_v4',
    { fixedCidr: '10.9.0.0/25' },
    Invalid,
    /fixed_cidr 10\.9\.0\.0\/25 is outside fixed_range_v4 10\.1\.0\.0\/24/,
  ],
  [
    'fixed_cidr with no usable address',
    { fixedCidr: '10.1.0.0/31' },
    Invalid,
    /fixed_cidr 10\.1\.0\.0\/31 leaves no address for instances in 10\.1\.0\.0\/24/,
  ],
  [
    'malformed fixed_cidr',
    { fixedCidr: '10.1.0.1/25' },
    Invalid,
    /fixed_cidr "10\.1\.0\.1\/25" has host bits set; the network is 10\.1\.0\.0\/25/,
  ],
  ['malformed fixed_range_v6', { fixedRangeV6: 'fd00::/200' }, Invalid, /fixed_range_v6 prefix \/200 is longer than \/128/],
  ['IPv4 fixed_range_v6', { fixedRangeV6: '10.0.0.0/8' }, Invalid, /fixed_range_v6 must be an IPv6 address/],
  ['fixed_range_v6 smaller than a /64', { fixedRangeV6: 'fd00::/96' }, Invalid, /fixed_range_v6 fd00::\/96 must be \/64 or larger/],
  ['gateway_v6 outside the /64', { fixedRangeV6: 'fd00::/64', gatewayV6: 'fd01::1' }, Invalid, /gateway_v6 fd01::1 is outside fd00::\/64/],
  ['IPv4 gateway_v6', { fixedRangeV6: 'fd00::/64', gatewayV6: '10.1.0.1' }, Invalid, /gateway_v6 must be an IPv6 address/],
  ['bad bridge_interface', { bridgeInterface: 'eth0; reboot' }, Invalid, /bridge_interface must be an interface name of 1-15 letters/],
  // Special-purpose ranges (issue 16, cause 5): refused by both interfaces, naming the rule.
  ['a loopback range', { fixedRangeV4: '127.0.0.0/24' }, Invalid, /fixed_range_v4 127\.0\.0\.0\/24 overlaps loopback \(127\.0\.0\.0\/8\)/],
  ['a multicast range', { fixedRangeV4: '224.0.0.0/24' }, Invalid, /overlaps multicast \(224\.0\.0\.0\/4\)/],
  ['a range in 0.0.0.0/8', { fixedRangeV4: '0.0.0.0/24' }, Invalid, /overlaps "this network" \(0\.0\.0\.0\/8\)/],
  ['the whole IPv4 space', { fixedRangeV4: '0.0.0.0/0' }, Invalid, /fixed_range_v4 0\.0\.0\.0\/0 overlaps "this network"/],
  [
    'a link-local range',
    { fixedRangeV4: '169.254.169.0/24' },
    Invalid,
    /overlaps link-local \(169\.254\.0\.0\/16, the metadata address among them\)/,
  ],
  [
    "a range holding the host's my_ip",
    { fixedRangeV4: '192.0.2.0/24' },
    Invalid,
    /fixed_range_v4 192\.0\.2\.0\/24 holds 192\.0\.2\.10, this host's my_ip/,
  ],
  ['an IPv6 range of everything', { fixedRangeV6: '::/0' }, Invalid, /fixed_range_v6 ::\/0 overlaps the unspecified address/],
  ['an IPv6 range at ::', { fixedRangeV6: '::/64' }, Invalid, /fixed_range_v6 ::\/64 overlaps the unspecified address/],
  ['a multicast IPv6 range', { fixedRangeV6: 'ff00::/64' }, Invalid, /fixed_range_v6 ff00::\/64 overlaps multicast \(ff00::\/8\)/],
  ['a link-local IPv6 range', { fixedRangeV6: 'fe80::/64' }, Invalid, /overlaps link-local \(fe80::\/10\)/],
  // A bridge named after one of the host's other interfaces (cause 8).
  [
    'the loopback interface as bridge',
    { bridge: 'lo' },
    Invalid,
    /^bridge lo is the loopback interface, not a bridge; give the network a bridge name of its own/,
  ],
  ['the public interface as bridge', { bridge: 'eth0' }, Invalid, /^bridge eth0 is public_interface, not a bridge/],
  [
    'its own bridge_interface as bridge',
    { bridge: 'eth7', bridgeInterface: 'eth7' },
    Invalid,
    /^bridge eth7 is this network's bridge_interface, not a bridge/,
  ],
  // A field that only makes sense with another (cause 6).
  ['gateway_v6 without an IPv6 range', { gatewayV6: 'fd00::1' }, Invalid, /gateway_v6 needs an IPv6 range/],
];

/** What makes the subnet too small differs per mode (VLAN reserves more). */
const TOO_SMALL: Record<Mode, Case[]> = {
  flat: [
    [
      'no address left after the DHCP server',
      { fixedRangeV4: '10.1.0.0/30', networkSize: 4, dhcpServer: '10.1.0.2' },
      Invalid,
      /network_size 4 is too small: no address is left for instances in 10\.1\.0\.0\/30/,
    ],
  ],
  flatdhcp: [
    [
      'no address left after the DHCP server',
      { fixedRangeV4: '10.1.0.0/30', networkSize: 4, dhcpServer: '10.1.0.2' },
      Invalid,
      /network_size 4 is too small: no address is left for instances/,
    ],
  ],
  vlan: [
    [
      'subnet not larger than the reserved addresses',
      { fixedRangeV4: '10.1.0.0/30', networkSize: 4 },
      Invalid,
      /network_size 4 is too small: a \/30 has 4 addresses and 4 are reserved in this mode/,
    ],
  ],
};

/** Bridge names reach command lines; the flat modes take --bridge for every create. */
const BAD_BRIDGE: Case = ['bad bridge name', { bridge: 'br 0' }, Invalid, /bridge must be an interface name of 1-15 letters, digits/];

describe.each(BACKENDS)('networks.create refusals on %s', (backend) => {
  const db = useDatabase(backend);

  async function setup(mode: Mode, options: HarnessOptions = {}) {
    const h = harness(db(), mode, options);
    await h.manager.networks.create({ label: 'existing', fixedRangeV4: '10.0.0.0/24', uuid: EXISTING_UUID });
    h.host.clear();
    return h;
  }

  describe.each(MODES)('in %s mode', (mode) => {
    it.each([...COMMON, ...TOO_SMALL[mode], BAD_BRIDGE])('refuses %s and changes nothing', async (_name, request, errorClass, message) => {
      const h = await setup(mode);
      await expectRefused(
        db(),
        () => h.manager.networks.create({ label: 'new', fixedRangeV4: '10.1.0.0/24', ...request }),
        errorClass,
        message,
      );
      expect(h.host.changes).toEqual([]);
    });

    it('refuses a subnet too small for the VPN client addresses (VLAN) or accepts it (flat)', async () => {
      const h = await setup(mode, { config: { cnt_vpn_clients: '4' } });
      const create = () => h.manager.networks.create({ label: 'new', fixedRangeV4: '10.1.0.0/29', networkSize: 8 });
      if (mode === 'vlan') {
        await expectRefused(db(), create, Invalid, /network_size 8 is too small: a \/29 has 8 addresses and 8 are reserved in this mode/);
      } else {
        await expect(create()).resolves.toHaveLength(1);
      }
    });

    it('refuses a layout that leaves no address between the DHCP start and the top reserve', async () => {
      const h = await setup(mode, { config: { cnt_vpn_clients: '3' } });
      const create = () => h.manager.networks.create({ label: 'new', fixedRangeV4: '10.1.0.0/29', networkSize: 8, dhcpServer: '10.1.0.3' });
      if (mode === 'vlan') {
        // Bottom .0-.2 and .3 (DHCP server), top .4-.7 for the VPN clients and broadcast.
        await expectRefused(db(), create, Invalid, /network_size 8 is too small: no address is left for instances in 10\.1\.0\.0\/29/);
      } else {
        const [network] = await create();
        expect(network!.dhcpStart).toBe('10.1.0.2');
      }
    });
  });

  describe('VLAN mode', () => {
    const vlanCases: Case[] = [
      [
        'vlan_start + num_networks past 4094',
        { fixedRangeV4: '10.1.0.0/24', numNetworks: 2, networkSize: 128, vlanStart: 4094 },
        Invalid,
        /vlan_start 4094 \+ num_networks 2 goes past VLAN 4094/,
      ],
      ['VLAN id 4095', { vlan: 4095 }, Invalid, /vlan must be an integer from 1 to 4094, got "4095"/],
      ['VLAN id 0', { vlan: 0 }, Invalid, /vlan must be an integer from 1 to 4094, got "0"/],
      ['vlan_start 0', { vlanStart: 0 }, Invalid, /vlan_start must be an integer from 1 to 4094/],
      ['a VLAN id already used', { vlan: 100 }, DuplicateVlan, /VLAN 100 is already used by another network/],
      [
        'a bridge already used',
        { vlan: 200, bridge: 'br100' },
        DuplicateVlan,
        /bridge br100 is already used by network existing \(10\.0\.0\.0\/24\)/,
      ],
      [
        '--vlan with num_networks > 1',
        { vlan: 200, numNetworks: 2, networkSize: 128 },
        Invalid,
        /--vlan names one VLAN; use --vlan_start with num_networks=2/,
      ],
      [
        '--bridge with num_networks > 1',
        { bridge: 'brx', numNetworks: 2, networkSize: 128 },
        Invalid,
        /--bridge names one bridge; leave it out with num_networks=2/,
      ],
      ['a bad explicit bridge', { bridge: 'br;rm' }, Invalid, /bridge must be an interface name/],
      ['a VPN port past 65535', { vpnStart: 70000 }, Invalid, /vpn must be an integer from 1 to 65535/],
    ];

    it.each(vlanCases)('refuses %s and changes nothing', async (_name, request, errorClass, message) => {
      const h = await setup('vlan');
      await expectRefused(
        db(),
        () => h.manager.networks.create({ label: 'new', fixedRangeV4: '10.1.0.0/24', ...request }),
        errorClass,
        message,
      );
    });

    it('refuses when every VLAN id from vlan_start is taken', async () => {
      const h = await setup('vlan');
      await h.manager.networks.create({ label: 'last', fixedRangeV4: '10.2.0.0/24', vlan: 4094 });
      await expectRefused(
        db(),
        () => h.manager.networks.create({ label: 'new', fixedRangeV4: '10.1.0.0/24', vlanStart: 4094 }),
        DuplicateVlan,
        /only 0 free VLAN id\(s\) from 4094 to 4094; 1 needed/,
      );
    });

    it('refuses without an interface to build VLANs on', async () => {
      const h = await setup('vlan');
      const bare = harness(db(), 'vlan', { config: { vlan_interface: '', flat_interface: '' } });
      await expectRefused(
        db(),
        () => bare.manager.networks.create({ label: 'new', fixedRangeV4: '10.1.0.0/24' }),
        Invalid,
        /VLAN networks need an interface to build VLANs on: give --bridge_interface or set vlan_interface/,
      );
      // An explicit --bridge_interface is enough.
      await expect(
        bare.manager.networks.create({ label: 'new', fixedRangeV4: '10.1.0.0/24', bridgeInterface: 'eth2' }),
      ).resolves.toHaveLength(1);
      expect(h.host.changes).toEqual([]);
    });
  });

  describe.each(['flat', 'flatdhcp'] as const)('%s mode', (mode) => {
    it.each([
      ['--vlan', { vlan: 200 }],
      ['--vlan_start', { vlanStart: 200 }],
      ['--vpn', { vpnStart: 2000 }],
    ] as const)('refuses the VLAN-only option %s instead of ignoring it', async (option, extra) => {
      const h = await setup(mode);
      await expectRefused(
        db(),
        () => h.manager.networks.create({ label: 'new', fixedRangeV4: '10.1.0.0/24', ...extra }),
        Invalid,
        new RegExp(`^${option} applies to VLAN mode only; this service runs network_manager=${mode}$`),
      );
    });
  });
});
