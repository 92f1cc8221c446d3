import type { Network } from '../../db/networks.js';
import type { NetworkSelector } from '../../managers/requests.js';
import { boolOption, intOption, noMorePositionals, type Parsed, stringOption, UsageError } from '../args.js';
import { formatTable } from '../table.js';
import type { Category } from './command.js';

const CREATE_OPTIONS = {
  label: { type: 'string', meta: 'LABEL', help: 'network label (required unless the positional form is used)' },
  fixed_range_v4: { type: 'string', meta: 'CIDR', help: 'IPv4 range to split into networks' },
  num_networks: { type: 'int', meta: 'N', help: 'how many networks (default num_networks)' },
  network_size: { type: 'int', meta: 'N', help: 'addresses per network (default network_size)' },
  vlan: { type: 'int', meta: 'ID', help: 'VLAN id of a single network' },
  vlan_start: { type: 'int', meta: 'ID', help: 'first VLAN id to try (default vlan_start)' },
  vpn: { type: 'int', meta: 'PORT', help: 'first cloudpipe VPN port (default vpn_start)' },
  fixed_range_v6: { type: 'string', meta: 'CIDR', help: 'IPv6 range; one /64 per network' },
  gateway: { type: 'string', meta: 'IP', help: 'IPv4 gateway (default: second address)' },
  gateway_v6: { type: 'string', meta: 'IP', help: 'IPv6 gateway' },
  bridge: { type: 'string', meta: 'NAME', help: 'bridge (flat: default flat_network_bridge; vlan: brVLAN)' },
  bridge_interface: { type: 'string', meta: 'IF', help: 'interface enslaved to the bridge / VLAN parent' },
  multi_host: { type: 'bool', meta: 'T|F', help: 'every compute host serves its own instances' },
  dns1: { type: 'string', meta: 'IP', help: 'first DNS server' },
  dns2: { type: 'string', meta: 'IP', help: 'second DNS server' },
  uuid: { type: 'string', meta: 'UUID', help: 'network uuid (single network only)' },
  fixed_cidr: { type: 'string', meta: 'CIDR', help: 'only addresses in this sub-range are handed out' },
  project_id: { type: 'string', meta: 'PROJECT', help: 'project the network belongs to' },
  host: { type: 'string', meta: 'HOST', help: 'its network host (default: the first network host to use it)' },
  priority: { type: 'int', meta: 'N', help: 'network priority' },
  mtu: { type: 'int', meta: 'BYTES', help: 'MTU of the network' },
  dhcp_server: { type: 'string', meta: 'IP', help: 'DHCP server address (default: the gateway)' },
  enable_dhcp: { type: 'bool', meta: 'T|F', help: 'serve DHCP on this network (default T)' },
  share_address: { type: 'bool', meta: 'T|F', help: 'share the DHCP address across hosts (default F)' },
} as const;

const SELECT_OPTIONS = {
  fixed_range: { type: 'string', meta: 'CIDR', help: 'the network by its IPv4 range' },
  uuid: { type: 'string', meta: 'UUID', help: 'the network by uuid' },
} as const;

/** `--fixed_range`, `--uuid` or one positional CIDR/uuid: exactly one of them. */
function selector(parsed: Parsed, command: string): NetworkSelector {
  noMorePositionals(parsed, 1, command);
  const given = [stringOption(parsed, 'fixed_range'), stringOption(parsed, 'uuid'), parsed.positionals[0]].filter(
    (value) => value !== undefined,
  );
  if (given.length !== 1) throw new UsageError(`${command}: name the network once, with --fixed_range=CIDR or --uuid=UUID`);
  const value = given[0]!;
  return value.includes('/') ? { cidr: value } : { uuid: value };
}

/** The old positional form `network create CIDR NUM_NETWORKS NETWORK_SIZE`, label 'public' as then. */
function positionalCreate(parsed: Parsed): { fixedRangeV4?: string; numNetworks?: number; networkSize?: number; label?: string } {
  noMorePositionals(parsed, 3, 'network create');
  const [cidr, num, size] = parsed.positionals;
  if (cidr === undefined) return {};
  const clash = (option: string) => {
    if (parsed.options.has(option)) throw new UsageError(`network create: the range is given both positionally and as --${option}`);
  };
  clash('fixed_range_v4');
  const number = (text: string | undefined, name: string) => {
    if (text === undefined) return undefined;
    clash(name);
    if (!/^\d{1,9}$/.test(text))
      throw new UsageError(`network create: ${name.toUpperCase()} must be a whole number, got ${JSON.stringify(text)}`);
    return Number(text);
  };
  const result: { fixedRangeV4?: string; numNetworks?: number; networkSize?: number; label?: string } = { fixedRangeV4: cidr };
  const numNetworks = number(num, 'num_networks');
  const networkSize = number(size, 'network_size');
  if (numNetworks !== undefined) result.numNetworks = numNetworks;
  if (networkSize !== undefined) result.networkSize = networkSize;
  if (!parsed.options.has('label')) result.label = 'public';
  return result;
}

function listRow(network: Network): (string | number | null)[] {
  return [
    network.id,
    network.cidr,
    network.cidrV6,
    network.dhcpStart,
    network.dns1,
    network.dns2,
    network.vlan,
    network.projectId,
    network.uuid,
  ];
}

export const networkCommands: Category = {
  create: {
    usage: 'novanet-manage network create --label=LABEL --fixed_range_v4=CIDR [options] | network create CIDR NUM_NETWORKS NETWORK_SIZE',
    summary: 'Create networks and their fixed IPs.',
    options: CREATE_OPTIONS,
    async run(parsed, { manager }, io) {
      const positional = positionalCreate(parsed);
      const label = stringOption(parsed, 'label') ?? positional.label;
      if (label === undefined) throw new UsageError('network create: --label is required');
      if (stringOption(parsed, 'fixed_range_v4') === undefined && positional.fixedRangeV4 === undefined) {
        throw new UsageError('network create: --fixed_range_v4 is required (or the positional form CIDR NUM_NETWORKS NETWORK_SIZE)');
      }
      let lastShown = 0;
      // A failure after some progress must still print its error on a line of its own.
      let progressOpen = false;
      const created = await manager.networks
        .create({
          label,
          fixedRangeV4: stringOption(parsed, 'fixed_range_v4') ?? positional.fixedRangeV4,
          numNetworks: intOption(parsed, 'num_networks') ?? positional.numNetworks,
          networkSize: intOption(parsed, 'network_size') ?? positional.networkSize,
          vlan: intOption(parsed, 'vlan'),
          vlanStart: intOption(parsed, 'vlan_start'),
          vpnStart: intOption(parsed, 'vpn'),
          fixedRangeV6: stringOption(parsed, 'fixed_range_v6'),
          gateway: stringOption(parsed, 'gateway'),
          gatewayV6: stringOption(parsed, 'gateway_v6'),
          bridge: stringOption(parsed, 'bridge'),
          bridgeInterface: stringOption(parsed, 'bridge_interface'),
          multiHost: boolOption(parsed, 'multi_host'),
          dns1: stringOption(parsed, 'dns1'),
          dns2: stringOption(parsed, 'dns2'),
          uuid: stringOption(parsed, 'uuid'),
          fixedCidr: stringOption(parsed, 'fixed_cidr'),
          projectId: stringOption(parsed, 'project_id'),
          host: stringOption(parsed, 'host'),
          priority: intOption(parsed, 'priority'),
          mtu: intOption(parsed, 'mtu'),
          dhcpServer: stringOption(parsed, 'dhcp_server'),
          enableDhcp: boolOption(parsed, 'enable_dhcp'),
          shareAddress: boolOption(parsed, 'share_address'),
          onProgress: io.interactive
            ? (written, total) => {
                const now = Date.now();
                if (now - lastShown < 200 && written < total) return;
                lastShown = now;
                progressOpen = written < total;
                io.stderr(
                  `\rwriting fixed IPs: ${written}/${total} (${Math.floor((100 * written) / total)}%)${written === total ? '\n' : ''}`,
                );
              }
            : undefined,
        })
        .finally(() => {
          if (progressOpen) io.stderr('\n');
        });
      for (const network of created) {
        io.stdout(
          `created network ${network.label} ${network.cidr}${network.vlan === null ? '' : ` vlan ${network.vlan}`} ${network.uuid}\n`,
        );
      }
    },
  },
  list: {
    usage: 'novanet-manage network list',
    summary: 'List networks.',
    options: {},
    async run(parsed, { manager }, io) {
      noMorePositionals(parsed, 0, 'network list');
      const all = await manager.networks.list();
      if (all.length === 0) {
        io.stdout('No networks found\n');
        return;
      }
      io.stdout(formatTable(['id', 'IPv4', 'IPv6', 'start address', 'DNS1', 'DNS2', 'VlanID', 'project', 'uuid'], all.map(listRow)));
    },
  },
  delete: {
    usage: 'novanet-manage network delete --fixed_range=CIDR | --uuid=UUID',
    summary: 'Delete a network that has no instances and no project.',
    options: SELECT_OPTIONS,
    async run(parsed, { manager }, io) {
      const network = await manager.networks.delete(selector(parsed, 'network delete'));
      io.stdout(`deleted network ${network.label} ${network.cidr} ${network.uuid}\n`);
    },
  },
  modify: {
    usage:
      'novanet-manage network modify --fixed_range=CIDR|--uuid=UUID [--project=P] [--host=H] [--disassociate-project] [--disassociate-host]',
    summary: 'Associate a network with a project or host, or take it away.',
    options: {
      ...SELECT_OPTIONS,
      project: { type: 'string', meta: 'PROJECT', help: 'associate with this project' },
      host: { type: 'string', meta: 'HOST', help: 'make this host the network host' },
      disassociate_project: { type: 'flag', help: 'take the network away from its project' },
      disassociate_host: { type: 'flag', help: 'clear the network host' },
    },
    async run(parsed, { manager }, io) {
      const network = await manager.networks.modify(selector(parsed, 'network modify'), {
        project: stringOption(parsed, 'project'),
        host: stringOption(parsed, 'host'),
        disassociateProject: boolOption(parsed, 'disassociate_project'),
        disassociateHost: boolOption(parsed, 'disassociate_host'),
      });
      io.stdout(`network ${network.cidr}: project ${network.projectId ?? 'None'}, host ${network.host ?? 'None'}\n`);
    },
  },
};
