import type Router from '@koa/router';
import { z } from 'zod';
import type { Network } from '../db/networks.js';
import { Invalid, isNovanetError, NotFound } from '../errors.js';
import { isUuid } from '../fields.js';
import type { NetworkManager } from '../managers/manager.js';
import type { CreateNetworksRequest, ModifyNetworkRequest } from '../managers/requests.js';
import { isAdmin, projectOf, requireAdmin } from './auth.js';
import { requireJson } from './body.js';
import type { ApiState } from './types.js';
import { actionName, booleanLike, integerLike, nullValue, optionalString, parseBody } from './validation.js';

/** Nova's policy rules, named in 403 messages so operators recognise them. */
const POLICY = 'os_compute_api:os-networks';
const ASSOCIATE_POLICY = 'os_compute_api:os-networks-associate';

/** Fields every caller sees (Nova's network_dict). */
const PUBLIC_FIELDS = [
  'id',
  'cidr',
  'netmask',
  'gateway',
  'broadcast',
  'dns1',
  'dns2',
  'cidr_v6',
  'gateway_v6',
  'label',
  'netmask_v6',
] as const;

const iso = (date: Date | null): string | null => (date === null ? null : date.toISOString());

/**
 * A network as Nova's os-networks shows it: `id` is the uuid; admins also see how it
 * is wired (bridge, VLAN, VPN, project, host, ...). Only live networks are shown.
 */
export function networkView(network: Network, admin: boolean): Record<string, unknown> {
  const all: Record<string, unknown> = {
    id: network.uuid,
    cidr: network.cidr,
    netmask: network.netmask,
    gateway: network.gateway,
    broadcast: network.broadcast,
    dns1: network.dns1,
    dns2: network.dns2,
    cidr_v6: network.cidrV6,
    gateway_v6: network.gatewayV6,
    label: network.label,
    netmask_v6: network.netmaskV6,
    created_at: iso(network.createdAt),
    updated_at: iso(network.updatedAt),
    deleted_at: null,
    deleted: false,
    injected: network.injected,
    bridge: network.bridge,
    vlan: network.vlan,
    vpn_public_address: network.vpnPublicAddress,
    vpn_public_port: network.vpnPublicPort,
    vpn_private_address: network.vpnPrivateAddress,
    dhcp_start: network.dhcpStart,
    project_id: network.projectId,
    host: network.host,
    bridge_interface: network.bridgeInterface,
    multi_host: network.multiHost,
    priority: network.priority,
    rxtx_base: network.rxtxBase,
    mtu: network.mtu,
    dhcp_server: network.dhcpServer,
    enable_dhcp: network.enableDhcp,
    share_address: network.shareAddress,
  };
  if (admin) return all;
  return Object.fromEntries(PUBLIC_FIELDS.map((field) => [field, all[field]]));
}

/** Nova's create schema, plus novanet's num_networks, network_size and priority. */
const CreateBody = z.strictObject({
  network: z
    .strictObject({
      label: z.string().min(1).max(255),
      cidr: optionalString(43),
      cidr_v6: optionalString(43),
      gateway: optionalString(39),
      gateway_v6: optionalString(39),
      bridge: optionalString(15),
      bridge_interface: optionalString(15),
      dns1: optionalString(39),
      dns2: optionalString(39),
      dhcp_server: optionalString(39),
      fixed_cidr: optionalString(43),
      project_id: optionalString(255),
      multi_host: booleanLike(),
      enable_dhcp: booleanLike(),
      share_address: booleanLike(),
      // Nova accepted it and let the network API decide; novanet has one IPAM.
      ipam: booleanLike(),
      vlan: integerLike(1, 4094),
      vlan_start: integerLike(1, 4094),
      vpn_start: integerLike(1, 65535),
      mtu: integerLike(68, 65535),
      priority: integerLike(0, 2 ** 31 - 1),
      num_networks: integerLike(1, 4094),
      network_size: integerLike(4, 2 ** 24),
      allowed_start: z.unknown().optional(),
      allowed_end: z.unknown().optional(),
    })
    .superRefine((network, ctx) => {
      if (network.cidr === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['cidr'],
          message: 'is required: every novanet network has an IPv4 range (cidr_v6 may come with it)',
        });
      }
      for (const field of ['allowed_start', 'allowed_end'] as const) {
        if (network[field] !== undefined)
          ctx.addIssue({
            code: 'custom',
            path: [field],
            message: 'is not supported by novanet; use fixed_cidr to limit the addresses handed out',
          });
      }
    }),
});

/** A CIDR's size, which Nova's API made the network size (one network per range). */
function rangeSize(cidr: string): number | undefined {
  const prefix = /\/(\d{1,2})$/.exec(cidr);
  if (!prefix) return undefined;
  const bits = 32 - Number(prefix[1]);
  return bits >= 0 && bits <= 32 ? 2 ** bits : undefined;
}

function createRequest(body: z.output<typeof CreateBody>['network']): CreateNetworksRequest {
  return {
    label: body.label,
    fixedRangeV4: body.cidr,
    fixedRangeV6: body.cidr_v6,
    gateway: body.gateway,
    gatewayV6: body.gateway_v6,
    bridge: body.bridge,
    bridgeInterface: body.bridge_interface,
    dns1: body.dns1,
    dns2: body.dns2,
    dhcpServer: body.dhcp_server,
    fixedCidr: body.fixed_cidr,
    projectId: body.project_id,
    multiHost: body.multi_host,
    enableDhcp: body.enable_dhcp,
    shareAddress: body.share_address,
    vlan: body.vlan,
    vlanStart: body.vlan_start,
    vpnStart: body.vpn_start,
    mtu: body.mtu,
    priority: body.priority,
    numNetworks: body.num_networks ?? 1,
    networkSize: body.network_size ?? (body.cidr === undefined ? undefined : rangeSize(body.cidr)),
  };
}

/** `{"ACTION": value}` bodies of POST /os-networks/{id}/action. */
const ACTIONS = {
  disassociate: {
    policy: POLICY,
    value: nullValue,
    request: (): ModifyNetworkRequest => ({ disassociateProject: true, disassociateHost: true }),
  },
  disassociate_host: { policy: ASSOCIATE_POLICY, value: nullValue, request: (): ModifyNetworkRequest => ({ disassociateHost: true }) },
  disassociate_project: {
    policy: ASSOCIATE_POLICY,
    value: nullValue,
    request: (): ModifyNetworkRequest => ({ disassociateProject: true }),
  },
  associate_host: {
    policy: ASSOCIATE_POLICY,
    value: z.string().min(1).max(255),
    request: (host: string): ModifyNetworkRequest => ({ host }),
  },
} as const;

type ActionName = keyof typeof ACTIONS;

/** The one action named by an action body, checked before any policy or lookup. */
function actionOf(body: unknown): { name: ActionName; request: ModifyNetworkRequest } {
  const name = actionName(body, Object.keys(ACTIONS) as ActionName[], 'os-networks');
  const action = ACTIONS[name];
  const value = parseBody(z.strictObject({ [name]: action.value }), body)[name];
  return { name, request: action.request(value as string) };
}

const AddBody = z.strictObject({ id: z.string().max(64).nullable() });

export interface NetworkRouteDeps {
  manager: NetworkManager;
  maxBodyBytes: number;
}

/**
 * Nova's os-networks extension (with os-networks-associate's actions). Members list
 * and show the networks their project may use (its own and the unowned ones); every
 * change is for admins.
 */
export function networkRoutes(router: Router<ApiState>, deps: NetworkRouteDeps): void {
  const { manager } = deps;

  /** A network by the uuid in the URL; a malformed uuid is just a network that does not exist. */
  async function find(id: string): Promise<Network> {
    if (!isUuid(id)) throw new NotFound(`Network ${id.slice(0, 64)} not found`);
    return manager.networks.get({ uuid: id });
  }

  /**
   * What a member may see: its project's networks, and in the flat modes also the
   * shared ones no project owns. In VLAN mode an unowned network is a spare in the pool
   * the service hands to projects, not something to show (nova's project_only).
   */
  const visible = (network: Network, project: string) =>
    network.projectId === project || (network.projectId === null && !manager.capabilities.vlan);

  router.get('/v2.1/os-networks', async (ctx) => {
    const admin = isAdmin(ctx);
    const project = projectOf(ctx);
    const found = await manager.networks.list(admin ? {} : { visibleTo: project });
    ctx.body = { networks: found.filter((network) => admin || visible(network, project)).map((network) => networkView(network, admin)) };
  });

  router.post('/v2.1/os-networks', async (ctx) => {
    requireAdmin(ctx, POLICY);
    const { network } = parseBody(CreateBody, await requireJson(ctx, deps.maxBodyBytes));
    const [created] = await manager.networks.create(createRequest(network));
    if (!created) throw new Error('networks.create returned no network');
    ctx.body = { network: networkView(created, true) };
  });

  // Before /:id, so that "add" is never taken for a network id.
  router.post('/v2.1/os-networks/add', async (ctx) => {
    requireAdmin(ctx, POLICY);
    const { id } = parseBody(AddBody, await requireJson(ctx, deps.maxBodyBytes));
    const project = projectOf(ctx);
    let network: Network | undefined;
    if (id === null) {
      // Nova's "any network": the first one no project owns.
      network = (await manager.networks.list()).find((candidate) => candidate.projectId === null);
      if (!network) throw new Invalid('No more available networks: every network belongs to a project');
    } else {
      // Nova answers 400, not 404, for an unknown network here: the body is wrong.
      network = await find(id).catch((error: unknown) => {
        throw isNovanetError(error) && error.kind === 'not_found' ? new Invalid(`network ${id.slice(0, 64)} not found`) : error;
      });
    }
    await manager.networks.modify({ uuid: network.uuid }, { project });
    ctx.status = 202;
    ctx.body = '';
  });

  router.get('/v2.1/os-networks/:id', async (ctx) => {
    const network = await find(ctx.params.id ?? '');
    const admin = isAdmin(ctx);
    if (!admin && !visible(network, projectOf(ctx))) throw new NotFound(`Network ${network.uuid} not found`);
    ctx.body = { network: networkView(network, admin) };
  });

  router.delete('/v2.1/os-networks/:id', async (ctx) => {
    requireAdmin(ctx, POLICY);
    const network = await find(ctx.params.id ?? '');
    await manager.networks.delete({ uuid: network.uuid });
    ctx.status = 202;
    ctx.body = '';
  });

  router.post('/v2.1/os-networks/:id/action', async (ctx) => {
    const action = actionOf(await requireJson(ctx, deps.maxBodyBytes));
    requireAdmin(ctx, ACTIONS[action.name].policy);
    const network = await find(ctx.params.id ?? '');
    await manager.networks.modify({ uuid: network.uuid }, action.request);
    ctx.status = 202;
    ctx.body = '';
  });
}
