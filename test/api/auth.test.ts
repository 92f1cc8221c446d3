/**
 * Who may do what: every endpoint × {no token, bad token, member of the owning
 * project, member of another project, admin}, and the project_id of the URL. A
 * refused request changes nothing; an allowed one answers its success status.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Network } from '../../src/db/networks.js';
import { type Api, expectFault, registeredRoutes, startApi, uuidOf } from '../support/api.js';
import { BACKENDS } from '../support/databases.js';
import { snapshot, wipe } from '../support/dbState.js';
import { useDatabase } from '../support/managers.js';

type Caller = 'none' | 'bad' | 'owner' | 'other' | 'admin';
const CALLERS: Caller[] = ['none', 'bad', 'owner', 'other', 'admin'];

interface World {
  /** Unowned, with instance 1 of p1 on it. */
  shared: Network;
  /** Owned by p1. */
  owned: Network;
  /** Unowned and unused: deletable. */
  spare: Network;
  /** The fixed IP of instance 1. */
  address: string;
  /** A floating IP of p1 (pool "nova"), not associated. */
  floating: { id: number; address: string };
  /** The host that binds p1's associated floating IP (for os-floating-ips-bulk/{host}). */
  floatingHost: string;
  /** p1's group `web` (no members) with one rule, and a default rule. */
  group: number;
  rule: number;
  defaultRule: number;
  tokens: Record<Caller, string | undefined>;
}

interface Endpoint {
  name: string;
  /** The route as the router registered it (`GET /v2.1/os-networks/:id`). */
  route: string;
  path: (world: World) => string;
  body?: (world: World) => unknown;
  /** none and bad are 401 unless given (the open routes answer everyone). */
  expected: Record<'owner' | 'other' | 'admin', number> & Partial<Record<'none' | 'bad', number>>;
}

const methodOf = (endpoint: Endpoint): string => endpoint.route.split(' ')[0]!;

const ENDPOINTS: Endpoint[] = [
  {
    name: 'list networks',
    route: 'GET /v2.1/os-networks',
    path: () => '/v2.1/os-networks',
    expected: { owner: 200, other: 200, admin: 200 },
  },
  {
    name: 'show an owned network',
    route: 'GET /v2.1/os-networks/:id',
    path: (w) => `/v2.1/os-networks/${w.owned.uuid}`,
    expected: { owner: 200, other: 404, admin: 200 },
  },
  {
    name: 'create a network',
    route: 'POST /v2.1/os-networks',
    path: () => '/v2.1/os-networks',
    body: () => ({ network: { label: 'new', cidr: '10.9.0.0/24' } }),
    expected: { owner: 403, other: 403, admin: 200 },
  },
  {
    name: 'delete a network',
    route: 'DELETE /v2.1/os-networks/:id',
    path: (w) => `/v2.1/os-networks/${w.spare.uuid}`,
    expected: { owner: 403, other: 403, admin: 202 },
  },
  {
    name: 'network action',
    route: 'POST /v2.1/os-networks/:id/action',
    path: (w) => `/v2.1/os-networks/${w.owned.uuid}/action`,
    body: () => ({ associate_host: 'net9' }),
    expected: { owner: 403, other: 403, admin: 202 },
  },
  {
    name: 'add a network to a project',
    route: 'POST /v2.1/os-networks/add',
    path: () => '/v2.1/os-networks/add',
    body: (w) => ({ id: w.spare.uuid }),
    expected: { owner: 403, other: 403, admin: 202 },
  },
  {
    name: 'show a fixed IP',
    route: 'GET /v2.1/os-fixed-ips/:address',
    path: (w) => `/v2.1/os-fixed-ips/${w.address}`,
    expected: { owner: 403, other: 403, admin: 200 },
  },
  {
    name: 'reserve a fixed IP',
    route: 'POST /v2.1/os-fixed-ips/:address/action',
    path: () => '/v2.1/os-fixed-ips/10.2.0.100/action',
    body: () => ({ reserve: null }),
    expected: { owner: 403, other: 403, admin: 202 },
  },
  {
    name: 'allocate an instance',
    route: 'POST /v2.1/os-novanet/instances',
    path: () => '/v2.1/os-novanet/instances',
    body: () => ({ instance: { uuid: uuidOf(2), project_id: 'p1', host: 'compute1' } }),
    expected: { owner: 200, other: 403, admin: 200 },
  },
  {
    name: 'read an instance',
    route: 'GET /v2.1/os-novanet/instances/:uuid',
    path: () => `/v2.1/os-novanet/instances/${uuidOf(1)}`,
    expected: { owner: 200, other: 404, admin: 200 },
  },
  {
    name: 'deallocate an instance',
    route: 'DELETE /v2.1/os-novanet/instances/:uuid',
    path: () => `/v2.1/os-novanet/instances/${uuidOf(1)}`,
    expected: { owner: 204, other: 404, admin: 204 },
  },
  {
    name: 'list hosts',
    route: 'GET /v2.1/os-novanet/hosts',
    path: () => '/v2.1/os-novanet/hosts',
    expected: { owner: 403, other: 403, admin: 200 },
  },
  {
    name: 'list floating IP pools',
    route: 'GET /v2.1/os-floating-ip-pools',
    path: () => '/v2.1/os-floating-ip-pools',
    expected: { owner: 200, other: 200, admin: 200 },
  },
  {
    name: 'list floating IPs',
    route: 'GET /v2.1/os-floating-ips',
    path: () => '/v2.1/os-floating-ips',
    expected: { owner: 200, other: 200, admin: 200 },
  },
  {
    name: 'show a floating IP',
    route: 'GET /v2.1/os-floating-ips/:id',
    path: (w) => `/v2.1/os-floating-ips/${w.floating.id}`,
    expected: { owner: 200, other: 404, admin: 200 },
  },
  {
    name: 'allocate a floating IP',
    route: 'POST /v2.1/os-floating-ips',
    path: () => '/v2.1/os-floating-ips',
    body: () => ({ pool: 'nova' }),
    expected: { owner: 200, other: 200, admin: 200 },
  },
  {
    name: 'release a floating IP',
    route: 'DELETE /v2.1/os-floating-ips/:id',
    path: (w) => `/v2.1/os-floating-ips/${w.floating.address}`,
    expected: { owner: 202, other: 404, admin: 202 },
  },
  {
    name: 'list floating IPs of a host in bulk',
    route: 'GET /v2.1/os-floating-ips-bulk/:host',
    path: (w) => `/v2.1/os-floating-ips-bulk/${w.floatingHost}`,
    expected: { owner: 403, other: 403, admin: 200 },
  },
  {
    name: 'list floating IPs in bulk',
    route: 'GET /v2.1/os-floating-ips-bulk',
    path: () => '/v2.1/os-floating-ips-bulk',
    expected: { owner: 403, other: 403, admin: 200 },
  },
  {
    name: 'create floating IPs in bulk',
    route: 'POST /v2.1/os-floating-ips-bulk',
    path: () => '/v2.1/os-floating-ips-bulk',
    body: () => ({ floating_ips_bulk_create: { ip_range: '192.0.2.64/29' } }),
    expected: { owner: 403, other: 403, admin: 200 },
  },
  {
    name: 'delete floating IPs in bulk',
    route: 'PUT /v2.1/os-floating-ips-bulk/:action',
    path: () => '/v2.1/os-floating-ips-bulk/delete',
    body: () => ({ ip_range: '198.51.100.0/30' }),
    expected: { owner: 403, other: 403, admin: 200 },
  },
  { name: 'list servers', route: 'GET /v2.1/servers', path: () => '/v2.1/servers', expected: { owner: 200, other: 200, admin: 200 } },
  {
    name: 'show a server',
    route: 'GET /v2.1/servers/:id',
    path: () => `/v2.1/servers/${uuidOf(1)}`,
    expected: { owner: 200, other: 404, admin: 200 },
  },
  {
    name: 'add a floating IP to a server',
    route: 'POST /v2.1/servers/:id/action',
    path: () => `/v2.1/servers/${uuidOf(1)}/action`,
    body: (w) => ({ addFloatingIp: { address: w.floating.address } }),
    expected: { owner: 202, other: 404, admin: 202 },
  },
  {
    name: 'add a security group to a server',
    route: 'POST /v2.1/servers/:id/action',
    path: () => `/v2.1/servers/${uuidOf(1)}/action`,
    body: () => ({ addSecurityGroup: { name: 'web' } }),
    expected: { owner: 202, other: 404, admin: 202 },
  },
  {
    name: "list a server's security groups",
    route: 'GET /v2.1/servers/:id/os-security-groups',
    path: () => `/v2.1/servers/${uuidOf(1)}/os-security-groups`,
    expected: { owner: 200, other: 404, admin: 200 },
  },
  {
    name: 'list security groups',
    route: 'GET /v2.1/os-security-groups',
    path: () => '/v2.1/os-security-groups',
    expected: { owner: 200, other: 200, admin: 200 },
  },
  {
    name: 'create a security group (in the caller project)',
    route: 'POST /v2.1/os-security-groups',
    path: () => '/v2.1/os-security-groups',
    body: () => ({ security_group: { name: 'db', description: 'db' } }),
    expected: { owner: 200, other: 200, admin: 200 },
  },
  {
    name: "show p1's security group",
    route: 'GET /v2.1/os-security-groups/:id',
    path: (w) => `/v2.1/os-security-groups/${w.group}`,
    expected: { owner: 200, other: 404, admin: 200 },
  },
  {
    name: "rename p1's security group",
    route: 'PUT /v2.1/os-security-groups/:id',
    path: (w) => `/v2.1/os-security-groups/${w.group}`,
    body: () => ({ security_group: { name: 'www', description: 'www' } }),
    expected: { owner: 200, other: 404, admin: 200 },
  },
  {
    name: "delete p1's security group",
    route: 'DELETE /v2.1/os-security-groups/:id',
    path: (w) => `/v2.1/os-security-groups/${w.group}`,
    expected: { owner: 202, other: 404, admin: 202 },
  },
  {
    name: "add a rule to p1's security group",
    route: 'POST /v2.1/os-security-group-rules',
    path: () => '/v2.1/os-security-group-rules',
    body: (w) => ({ security_group_rule: { parent_group_id: w.group, ip_protocol: 'tcp', from_port: 22, to_port: 22 } }),
    expected: { owner: 200, other: 404, admin: 200 },
  },
  {
    name: "delete a rule of p1's security group",
    route: 'DELETE /v2.1/os-security-group-rules/:id',
    path: (w) => `/v2.1/os-security-group-rules/${w.rule}`,
    expected: { owner: 202, other: 404, admin: 202 },
  },
  {
    name: 'list default security group rules',
    route: 'GET /v2.1/os-security-group-default-rules',
    path: () => '/v2.1/os-security-group-default-rules',
    expected: { owner: 403, other: 403, admin: 200 },
  },
  {
    name: 'add a default security group rule',
    route: 'POST /v2.1/os-security-group-default-rules',
    path: () => '/v2.1/os-security-group-default-rules',
    body: () => ({ security_group_default_rule: { ip_protocol: 'tcp', from_port: 22, to_port: 22 } }),
    expected: { owner: 403, other: 403, admin: 200 },
  },
  {
    name: 'show a default security group rule',
    route: 'GET /v2.1/os-security-group-default-rules/:id',
    path: (w) => `/v2.1/os-security-group-default-rules/${w.defaultRule}`,
    expected: { owner: 403, other: 403, admin: 200 },
  },
  {
    name: 'delete a default security group rule',
    route: 'DELETE /v2.1/os-security-group-default-rules/:id',
    path: (w) => `/v2.1/os-security-group-default-rules/${w.defaultRule}`,
    expected: { owner: 403, other: 403, admin: 204 },
  },
  { name: 'health', route: 'GET /healthz', path: () => '/healthz', expected: { none: 200, bad: 200, owner: 200, other: 200, admin: 200 } },
  { name: 'metrics', route: 'GET /metrics', path: () => '/metrics', expected: { none: 200, bad: 200, owner: 200, other: 200, admin: 200 } },
];

describe.each(BACKENDS)('authorization on %s', (backend) => {
  const db = useDatabase(backend);
  let api: Api;

  beforeAll(async () => {
    api = await startApi(db());
  });

  afterAll(async () => {
    await api.close();
  });

  /** The same starting state for every request that may write. */
  async function world(): Promise<World> {
    await wipe(db());
    const [shared] = await api.manager.networks.create({ label: 'shared', fixedRangeV4: '10.0.0.0/24' });
    const [owned] = await api.manager.networks.create({ label: 'owned', fixedRangeV4: '10.1.0.0/24', projectId: 'p1' });
    const [spare] = await api.manager.networks.create({ label: 'spare', fixedRangeV4: '10.2.0.0/24' });
    const info = await api.manager.allocation.allocate({
      instanceUuid: uuidOf(1),
      projectId: 'p1',
      host: 'compute1',
      requestedNetworks: [{ networkUuid: shared!.uuid }],
    });
    await api.manager.floating.createRange('203.0.113.0/29');
    await api.manager.floating.createRange('198.51.100.0/30', 'spare-pool');
    const floating = await api.manager.floating.allocate('p1');
    const bound = await api.manager.floating.allocate('p1');
    await api.manager.floating.associate({ address: bound.address, instanceUuid: uuidOf(1), actor: 'admin' });
    const [boundRow] = await api.manager.floating
      .list({ projectId: 'p1' })
      .then((rows) => rows.filter((row) => row.address === bound.address));
    const web = await api.manager.securityGroups.create('p1', { name: 'web', description: 'web' });
    const rule = await api.manager.securityGroups.addRule('admin', {
      parentGroupId: web.group.id,
      ipProtocol: 'udp',
      fromPort: 53,
      toPort: 53,
    });
    const defaultRule = await api.manager.securityGroups.createDefaultRule({ ipProtocol: 'icmp', fromPort: -1, toPort: -1 });
    return {
      shared: shared!,
      owned: owned!,
      spare: spare!,
      address: info.network_info[0]!.network.subnets[0]!.ips[0]!.address,
      floating: { id: floating.id, address: floating.address },
      floatingHost: boundRow!.host!,
      group: web.group.id,
      rule: rule.rule.id,
      defaultRule: defaultRule.id,
      tokens: {
        none: undefined,
        bad: 'x'.repeat(43),
        owner: await api.token('p1'),
        other: await api.token('p2'),
        admin: await api.token('ops', 'admin'),
      },
    };
  }

  it('has a row for every route the app registered, and no row for a route it did not', () => {
    expect([...new Set(ENDPOINTS.map((endpoint) => endpoint.route))].sort()).toEqual(registeredRoutes(api.app));
  });

  it.each(ENDPOINTS)('$name: $route answers each caller as expected', async (endpoint) => {
    const seen: Record<string, number> = {};
    const expected: Record<string, number> = { none: 401, bad: 401, ...endpoint.expected };
    for (const caller of CALLERS) {
      const w = await world();
      const before = await snapshot(db());
      const reply = await api.call(methodOf(endpoint), endpoint.path(w), {
        token: w.tokens[caller],
        ...(endpoint.body ? { body: endpoint.body(w) } : {}),
      });
      seen[caller] = reply.status;
      if (reply.status >= 400) {
        expectFault(reply, reply.status);
        // Refused means refused: nothing written.
        expect(await snapshot(db()), `${caller} changed the database`).toEqual(before);
      }
    }
    expect(seen).toEqual(expected);
  });

  it('401 bodies say what is missing; a revoked or expired token is refused like an unknown one', async () => {
    const w = await world();
    expectFault(await api.call('GET', '/v2.1/os-networks'), 401, /^Authentication required: send an API token in the X-Auth-Token header/);
    expectFault(
      await api.call('GET', '/v2.1/os-networks', { token: 'nope' }),
      401,
      'The X-Auth-Token is not valid: unknown, revoked or expired',
    );
    const created = await api.tokens.create('p1', 'member');
    expect((await api.call('GET', '/v2.1/os-networks', { token: created.token })).status).toBe(200);
    await api.tokens.revoke({ id: created.info.id });
    expectFault(await api.call('GET', '/v2.1/os-networks', { token: created.token }), 401);
    const soon = await api.tokens.create('p1', 'member', 'short-lived', { expiresAt: new Date(Date.now() + 60_000) });
    await db()
      .knex('api_tokens')
      .where('id', soon.info.id)
      .update({ expires_at: new Date(Date.now() - 1000) });
    expectFault(await api.call('GET', '/v2.1/os-networks', { token: soon.token }), 401);
    expect(w.tokens.owner).toBeDefined();
  });

  it("refuses a member naming another project in the URL with Nova's 400; an admin may name any", async () => {
    const w = await world();
    const before = await snapshot(db());
    for (const path of ['/v2.1/p2/os-networks', '/v2/p2/os-networks', `/v2.1/p2/os-novanet/instances/${uuidOf(1)}`]) {
      expectFault(
        await api.call('GET', path, { token: w.tokens.owner }),
        400,
        "Malformed request URL: URL's project_id 'p2' doesn't match Context's project_id 'p1'",
      );
    }
    expectFault(
      await api.call('DELETE', `/v2.1/p2/os-novanet/instances/${uuidOf(1)}`, { token: w.tokens.owner }),
      400,
      /Malformed request URL/,
    );
    expect(await snapshot(db())).toEqual(before);
    expect((await api.call('GET', '/v2.1/p1/os-networks', { token: w.tokens.owner })).status).toBe(200);
    expect((await api.call('GET', '/v2.1/anyone/os-networks', { token: w.tokens.admin })).status).toBe(200);
    // A project id that is not valid percent-encoding is a malformed URL.
    expectFault(await api.call('GET', '/v2.1/%E0%A4%A/os-networks', { token: w.tokens.admin }), 400, /Malformed request URL/);
  });

  it("policy refusals name Nova's rule", async () => {
    const w = await world();
    expectFault(
      await api.call('POST', '/v2.1/os-networks', { token: w.tokens.owner, body: { network: { label: 'x', cidr: '10.9.0.0/24' } } }),
      403,
      "Policy doesn't allow os_compute_api:os-networks to be performed.",
    );
    expectFault(
      await api.call('POST', `/v2.1/os-networks/${w.owned.uuid}/action`, { token: w.tokens.owner, body: { disassociate_host: null } }),
      403,
      "Policy doesn't allow os_compute_api:os-networks-associate to be performed.",
    );
    expectFault(
      await api.call('GET', `/v2.1/os-fixed-ips/${w.address}`, { token: w.tokens.other }),
      403,
      "Policy doesn't allow os_compute_api:os-fixed-ips to be performed.",
    );
    expectFault(
      await api.call('GET', '/v2.1/os-floating-ips-bulk', { token: w.tokens.owner }),
      403,
      "Policy doesn't allow os_compute_api:os-floating-ips-bulk to be performed.",
    );
  });
});
