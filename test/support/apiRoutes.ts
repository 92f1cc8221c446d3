/**
 * Every API route as a row (route, a valid request, the kind of each field), the
 * world a valid request of each row needs, and the whole contract of a refusal: the
 * example corpus (test/api/badInput.test.ts) and the generated one
 * (test/api/generated.test.ts) both send their requests through this.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { createHostLayer, type Reconciler } from '../../src/host/index.js';
import { createManager } from '../../src/managers/registry.js';
import { type Api, expectFault, type Reply, startApi, uuidOf } from './api.js';
import type { Kind } from './badInputs.js';
import { type Backend, freshDatabase, type TestDatabase, testConfig } from './databases.js';
import { snapshot } from './dbState.js';
import { RecordingExecutor } from './recordingExecutor.js';
import { RecordingHost } from './recordingHost.js';

/** What a valid request needs from the world: ids and addresses made in beforeAll. */
export interface World {
  shared: string;
  spare: string;
  /** A fixed IP of instance 1, and a free one of the shared network. */
  fixed: string;
  freeFixed: string;
  /** p1's floating IPs: one free, one associated with instance 1 (bound on `boundHost`). */
  floating: string;
  bound: string;
  boundHost: string;
  /** p1's security groups: `web` (one rule, no members) and `app`; a rule of web's; a default rule. */
  group: string;
  sourceGroup: string;
  rule: string;
  defaultRule: string;
}

/** A field's bad values: a kind of string, or an integer range. */
export type FieldSpec = Kind | { min: number; max: number };

export interface RouteCase {
  /** The route as registered (`POST /v2.1/os-networks/:id/action`). */
  route: string;
  /** What this row's valid request does (a route may have several, e.g. actions). */
  what: string;
  /** Valid values of the URL's `:params`. */
  params?: (w: World) => Record<string, string>;
  /** A valid body. */
  body?: (w: World) => unknown;
  /** `path:NAME` for a URL parameter, `url:project_id` for the `/v2.1/{project_id}/` prefix, else a dotted body path. */
  fields: Record<string, FieldSpec>;
  /** Wrong body shapes this route accepts (Nova's allocate takes no body, null or {}). */
  acceptsShapes?: string[];
}

export const NETWORK_FIELDS: Record<string, FieldSpec> = {
  'network.label': 'text',
  'network.cidr': 'cidr4',
  'network.cidr_v6': 'cidr6',
  'network.gateway': 'ipv4',
  'network.gateway_v6': 'ipv6',
  'network.bridge': 'ifname',
  'network.bridge_interface': 'ifname',
  'network.dns1': 'ipv4',
  'network.dns2': 'ipv4',
  'network.dhcp_server': 'ipv4',
  'network.fixed_cidr': 'cidr4',
  'network.project_id': 'project',
  'network.multi_host': 'bool',
  'network.enable_dhcp': 'bool',
  'network.share_address': 'bool',
  'network.ipam': 'bool',
  'network.vlan': { min: 1, max: 4094 },
  'network.vlan_start': { min: 1, max: 4094 },
  'network.vpn_start': { min: 1, max: 65535 },
  'network.mtu': { min: 68, max: 65535 },
  'network.priority': { min: 0, max: 2 ** 31 - 1 },
  'network.num_networks': { min: 1, max: 4094 },
  'network.network_size': { min: 4, max: 2 ** 24 },
};

const GROUP_ID = { min: 1, max: 2 ** 31 - 1 };
const PORT = { min: 1, max: 65535 };

export const ROUTES: RouteCase[] = [
  { route: 'GET /healthz', what: 'health', fields: {} },
  { route: 'GET /metrics', what: 'metrics', fields: {} },
  { route: 'GET /v2.1/os-networks', what: 'list networks', fields: { 'url:project_id': 'project' } },
  {
    route: 'POST /v2.1/os-networks',
    what: 'create a network',
    body: () => ({ network: { label: 'new', cidr: '10.9.0.0/28' } }),
    fields: NETWORK_FIELDS,
  },
  {
    route: 'POST /v2.1/os-networks/add',
    what: 'add a network to a project',
    body: (w) => ({ id: w.spare }),
    fields: { id: 'uuid', 'url:project_id': 'project' },
  },
  { route: 'GET /v2.1/os-networks/:id', what: 'show a network', params: (w) => ({ id: w.shared }), fields: { 'path:id': 'uuid' } },
  { route: 'DELETE /v2.1/os-networks/:id', what: 'delete a network', params: (w) => ({ id: w.spare }), fields: { 'path:id': 'uuid' } },
  {
    route: 'POST /v2.1/os-networks/:id/action',
    what: 'associate a host',
    params: (w) => ({ id: w.shared }),
    body: () => ({ associate_host: 'net9' }),
    fields: { 'path:id': 'uuid', associate_host: 'host' },
  },
  {
    route: 'POST /v2.1/os-networks/:id/action',
    what: 'disassociate',
    params: (w) => ({ id: w.shared }),
    body: () => ({ disassociate: null }),
    fields: { disassociate: 'null' },
  },
  {
    route: 'GET /v2.1/os-fixed-ips/:address',
    what: 'show a fixed IP',
    params: (w) => ({ address: w.fixed }),
    fields: { 'path:address': 'ipv4' },
  },
  {
    route: 'POST /v2.1/os-fixed-ips/:address/action',
    what: 'reserve a fixed IP',
    params: (w) => ({ address: w.freeFixed }),
    body: () => ({ reserve: null }),
    fields: { 'path:address': 'ipv4', reserve: 'null' },
  },
  {
    route: 'POST /v2.1/os-novanet/instances',
    what: 'allocate an instance',
    body: (w) => ({
      instance: {
        uuid: uuidOf(2),
        project_id: 'p1',
        host: 'compute1',
        hostname: 'vm2',
        requested_networks: [{ uuid: w.shared, fixed_ip: w.freeFixed }],
      },
    }),
    fields: {
      'instance.uuid': 'uuid',
      'instance.project_id': 'project',
      'instance.host': 'host',
      'instance.hostname': 'host',
      'instance.requested_networks.0.uuid': 'uuid',
      'instance.requested_networks.0.fixed_ip': 'ipv4',
    },
  },
  {
    route: 'GET /v2.1/os-novanet/instances/:uuid',
    what: 'read an instance',
    params: () => ({ uuid: uuidOf(1) }),
    fields: { 'path:uuid': 'uuid' },
  },
  {
    route: 'DELETE /v2.1/os-novanet/instances/:uuid',
    what: 'deallocate an instance',
    params: () => ({ uuid: uuidOf(1) }),
    fields: { 'path:uuid': 'uuid' },
  },
  { route: 'GET /v2.1/os-novanet/hosts', what: 'list hosts', fields: {} },
  { route: 'GET /v2.1/os-floating-ip-pools', what: 'list pools', fields: {} },
  { route: 'GET /v2.1/os-floating-ips', what: 'list floating IPs', fields: { 'url:project_id': 'project' } },
  {
    route: 'GET /v2.1/os-floating-ips/:id',
    what: 'show a floating IP',
    params: (w) => ({ id: w.floating }),
    fields: { 'path:id': 'ipv4' },
  },
  {
    route: 'POST /v2.1/os-floating-ips',
    what: 'allocate a floating IP',
    body: () => ({ pool: 'nova' }),
    fields: { pool: 'text', 'url:project_id': 'project' },
    acceptsShapes: ['null', 'missing envelope key'],
  },
  {
    route: 'DELETE /v2.1/os-floating-ips/:id',
    what: 'release a floating IP',
    params: (w) => ({ id: w.floating }),
    fields: { 'path:id': 'ipv4' },
  },
  { route: 'GET /v2.1/os-floating-ips-bulk', what: 'list in bulk', fields: {} },
  {
    route: 'GET /v2.1/os-floating-ips-bulk/:host',
    what: 'list a host in bulk',
    params: (w) => ({ host: w.boundHost }),
    fields: { 'path:host': 'host' },
  },
  {
    route: 'POST /v2.1/os-floating-ips-bulk',
    what: 'create in bulk',
    body: () => ({ floating_ips_bulk_create: { ip_range: '192.0.2.64/29', pool: 'extra', interface: 'eth3' } }),
    fields: {
      'floating_ips_bulk_create.ip_range': 'range4',
      'floating_ips_bulk_create.pool': 'text',
      'floating_ips_bulk_create.interface': 'ifname',
    },
  },
  {
    route: 'PUT /v2.1/os-floating-ips-bulk/:action',
    what: 'delete in bulk',
    params: () => ({ action: 'delete' }),
    body: () => ({ ip_range: '198.51.100.0/30' }),
    fields: { 'path:action': 'host', ip_range: 'range4' },
  },
  { route: 'GET /v2.1/servers', what: 'list servers', fields: {} },
  { route: 'GET /v2.1/servers/:id', what: 'show a server', params: () => ({ id: uuidOf(1) }), fields: { 'path:id': 'uuid' } },
  {
    route: 'POST /v2.1/servers/:id/action',
    what: 'add a floating IP',
    params: () => ({ id: uuidOf(1) }),
    body: (w) => ({ addFloatingIp: { address: w.floating, fixed_address: w.fixed } }),
    fields: { 'path:id': 'uuid', 'addFloatingIp.address': 'ipv4', 'addFloatingIp.fixed_address': 'ipv4' },
  },
  {
    route: 'POST /v2.1/servers/:id/action',
    what: 'remove a floating IP',
    params: () => ({ id: uuidOf(1) }),
    body: (w) => ({ removeFloatingIp: { address: w.bound } }),
    fields: { 'removeFloatingIp.address': 'ipv4' },
  },
  {
    route: 'POST /v2.1/servers/:id/action',
    what: 'add a security group',
    params: () => ({ id: uuidOf(1) }),
    body: () => ({ addSecurityGroup: { name: 'web' } }),
    fields: { 'addSecurityGroup.name': 'text' },
  },
  {
    route: 'POST /v2.1/servers/:id/action',
    what: 'remove a security group',
    params: () => ({ id: uuidOf(1) }),
    body: () => ({ removeSecurityGroup: { name: 'default' } }),
    fields: { 'removeSecurityGroup.name': 'text' },
  },
  {
    route: 'GET /v2.1/servers/:id/os-security-groups',
    what: "a server's security groups",
    params: () => ({ id: uuidOf(1) }),
    fields: { 'path:id': 'uuid' },
  },
  { route: 'GET /v2.1/os-security-groups', what: 'list security groups', fields: { 'url:project_id': 'project' } },
  {
    route: 'POST /v2.1/os-security-groups',
    what: 'create a security group',
    body: () => ({ security_group: { name: 'db', description: 'databases' } }),
    fields: { 'security_group.name': 'text', 'security_group.description': 'text', 'url:project_id': 'project' },
  },
  {
    route: 'GET /v2.1/os-security-groups/:id',
    what: 'show a security group',
    params: (w) => ({ id: w.group }),
    fields: { 'path:id': GROUP_ID },
  },
  {
    route: 'PUT /v2.1/os-security-groups/:id',
    what: 'rename a security group',
    params: (w) => ({ id: w.group }),
    body: () => ({ security_group: { name: 'www', description: 'renamed' } }),
    fields: { 'path:id': GROUP_ID, 'security_group.name': 'text', 'security_group.description': 'text' },
  },
  {
    route: 'DELETE /v2.1/os-security-groups/:id',
    what: 'delete a security group',
    params: (w) => ({ id: w.group }),
    fields: { 'path:id': GROUP_ID },
  },
  {
    route: 'POST /v2.1/os-security-group-rules',
    what: 'add a CIDR rule',
    body: (w) => ({
      security_group_rule: { parent_group_id: Number(w.group), ip_protocol: 'tcp', from_port: 22, to_port: 22, cidr: '10.0.0.0/8' },
    }),
    fields: {
      'security_group_rule.parent_group_id': GROUP_ID,
      'security_group_rule.ip_protocol': 'text',
      'security_group_rule.from_port': PORT,
      'security_group_rule.to_port': PORT,
      'security_group_rule.cidr': 'cidr',
    },
  },
  {
    route: 'POST /v2.1/os-security-group-rules',
    what: 'add a group rule',
    body: (w) => ({
      security_group_rule: {
        parent_group_id: Number(w.group),
        ip_protocol: 'tcp',
        from_port: 5432,
        to_port: 5432,
        group_id: Number(w.sourceGroup),
      },
    }),
    fields: { 'security_group_rule.group_id': GROUP_ID },
  },
  {
    route: 'DELETE /v2.1/os-security-group-rules/:id',
    what: 'delete a rule',
    params: (w) => ({ id: w.rule }),
    fields: { 'path:id': GROUP_ID },
  },
  { route: 'GET /v2.1/os-security-group-default-rules', what: 'list default rules', fields: {} },
  {
    route: 'POST /v2.1/os-security-group-default-rules',
    what: 'add a default rule',
    body: () => ({ security_group_default_rule: { ip_protocol: 'tcp', from_port: 80, to_port: 80, cidr: '0.0.0.0/0' } }),
    fields: {
      'security_group_default_rule.ip_protocol': 'text',
      'security_group_default_rule.from_port': PORT,
      'security_group_default_rule.to_port': PORT,
      'security_group_default_rule.cidr': 'cidr',
    },
  },
  {
    route: 'GET /v2.1/os-security-group-default-rules/:id',
    what: 'show a default rule',
    params: (w) => ({ id: w.defaultRule }),
    fields: { 'path:id': GROUP_ID },
  },
  {
    route: 'DELETE /v2.1/os-security-group-default-rules/:id',
    what: 'delete a default rule',
    params: (w) => ({ id: w.defaultRule }),
    fields: { 'path:id': GROUP_ID },
  },
];

/** A request to send: method, URL path, and a JSON body or raw bytes. */
export interface Request {
  method: string;
  path: string;
  body?: unknown;
  raw?: string | Buffer;
  headers?: Record<string, string>;
  /** Another token than the fixture's admin one; null sends none. */
  token?: string | null;
}

export function baseRequest(row: RouteCase, w: World, projectInUrl?: string): Request {
  const [method, pattern] = row.route.split(' ') as [string, string];
  const params = row.params?.(w) ?? {};
  let path = pattern.replace(/:(\w+)/g, (_, name: string) => encodeURIComponent(params[name]!));
  if (projectInUrl !== undefined) path = path.replace(/^\/v2\.1\//, `/v2.1/${encodeURIComponent(projectInUrl)}/`);
  return { method, path, ...(row.body ? { body: row.body(w) } : {}) };
}

/** The body with `value` at the dotted `path` (list indexes are numbers). */
export function withValue(body: unknown, path: string, value: unknown): unknown {
  const copy = structuredClone(body) as Record<string, unknown>;
  const keys = path.split('.');
  let node: Record<string, unknown> = copy;
  for (const key of keys.slice(0, -1)) node = node[key] as Record<string, unknown>;
  node[keys.at(-1)!] = value;
  return copy;
}

/** The value the valid request of `row` gives `field`. */
export function validValue(row: RouteCase, w: World, field: string): unknown {
  if (field === 'url:project_id') return 'p1';
  if (field.startsWith('path:')) return row.params?.(w)[field.slice(5)];
  let node = row.body?.(w);
  for (const key of field.split('.')) node = (node as Record<string, unknown>)[key];
  return node;
}

/** The request of `row` with the field `field` set to `value`. */
export function substituted(row: RouteCase, w: World, field: string, value: unknown): Request {
  if (field === 'url:project_id') return baseRequest(row, w, String(value));
  if (field.startsWith('path:')) {
    return baseRequest({ ...row, params: (world) => ({ ...row.params?.(world), [field.slice(5)]: String(value) }) }, w);
  }
  const base = baseRequest(row, w);
  return { ...base, body: withValue(base.body, field, value) };
}

/** Bodies of the wrong shape, as raw bytes or JSON; `envelope` is the valid body's only top-level key. */
export function wrongShapes(valid: unknown, maxBodyBytes: number): { name: string; request: Pick<Request, 'body' | 'raw' | 'headers'> }[] {
  const json = { 'Content-Type': 'application/json' };
  const top = typeof valid === 'object' && valid !== null ? Object.keys(valid)[0] : undefined;
  const inner = top === undefined ? undefined : (valid as Record<string, unknown>)[top];
  const shapes: { name: string; request: Pick<Request, 'body' | 'raw' | 'headers'> }[] = [
    { name: 'not JSON', request: { raw: '{"network": ', headers: json } },
    { name: 'JSON with a trailing comma', request: { raw: '{"a": 1,}', headers: json } },
    { name: 'not UTF-8', request: { raw: Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), headers: json } },
    { name: 'JSON list', request: { body: [valid] } },
    { name: 'JSON string', request: { body: 'x' } },
    { name: 'JSON number', request: { body: 1e308 } },
    { name: 'null', request: { raw: 'null', headers: json } },
    { name: 'missing envelope key', request: { body: {} } },
    { name: 'extra unknown key', request: { body: { ...(valid as object), extra: 1 } } },
    { name: '__proto__ key', request: { raw: `{"__proto__": {"admin": true}, ${JSON.stringify(valid).slice(1)}`, headers: json } },
    { name: 'deeply nested', request: { raw: `${'['.repeat(5000)}${']'.repeat(5000)}`, headers: json } },
    { name: 'text/plain body', request: { raw: JSON.stringify(valid), headers: { 'Content-Type': 'text/plain' } } },
    { name: 'form body', request: { raw: 'network=x', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } } },
    { name: 'malformed Content-Type', request: { raw: JSON.stringify(valid), headers: { 'Content-Type': ';;;' } } },
    { name: 'over the size limit', request: { raw: `{"pad": "${'a'.repeat(maxBodyBytes)}"}`, headers: json } },
  ];
  if (top !== undefined && typeof inner === 'object' && inner !== null && !Array.isArray(inner)) {
    shapes.push({ name: 'extra unknown key inside the envelope', request: { body: { [top]: { ...inner, extra: 1 } } } });
    shapes.push({ name: 'envelope is a list', request: { body: { [top]: [inner] } } });
    shapes.push({ name: 'envelope is a string', request: { body: { [top]: 'x' } } });
  }
  return shapes;
}

/** Stack frames, file paths and driver internals that must never reach a client. */
export const LEAKS = [
  /\n\s+at /,
  /\bat \S+ \(/,
  /\/work\/|\/src\/|node_modules|\.ts:\d+|\.js:\d+/,
  /SQLITE_|ER_[A-Z_]+|knex|TypeError|ReferenceError/,
];

/** One API on one fresh database, with the world of a valid request of every row. */
export interface Fixture {
  database: TestDatabase;
  api: Api;
  w: World;
  token: string;
  host: RecordingHost;
  executor: RecordingExecutor;
  reconciler: Reconciler;
  stateDir: string;
  close(): Promise<void>;
}

export async function fixture(backend: Backend = 'sqlite'): Promise<Fixture> {
  const database = await freshDatabase(backend);
  const stateDir = mkdtempSync(join(tmpdir(), 'novanet-badinput-'));
  const config = testConfig({ network_manager: 'flatdhcp', flat_interface: 'eth1', state_path: stateDir });
  const host = new RecordingHost();
  const executor = new RecordingExecutor();
  // The service's wiring: every change the manager reports goes to the real
  // reconciler, whose drivers run their commands through the recording executor.
  let reconciler: Reconciler | undefined;
  const manager = createManager({
    db: database.db,
    config,
    log: () => undefined,
    host: {
      apply: async (changes) => {
        await host.apply(changes);
        await reconciler!.apply(changes);
      },
    },
  });
  reconciler = createHostLayer({
    db: database.db,
    config,
    capabilities: manager.capabilities,
    configFile: undefined,
    log: () => undefined,
    executor,
  });
  const api = await startApi(database.db, { manager });
  const [shared] = await manager.networks.create({ label: 'shared', fixedRangeV4: '10.0.0.0/28', networkSize: 16 });
  const [spare] = await manager.networks.create({ label: 'spare', fixedRangeV4: '10.2.0.0/28', networkSize: 16 });
  const info = await manager.allocation.allocate({
    instanceUuid: uuidOf(1),
    projectId: 'p1',
    host: 'compute1',
    hostname: 'vm1',
    requestedNetworks: [{ networkUuid: shared!.uuid }],
  });
  await manager.floating.createRange('203.0.113.0/29');
  await manager.floating.createRange('198.51.100.0/30', 'spare-pool');
  const floating = await manager.floating.allocate('p1');
  const bound = await manager.floating.allocate('p1');
  await manager.floating.associate({ address: bound.address, instanceUuid: uuidOf(1), actor: 'admin' });
  const boundRow = (await manager.floating.list()).find((row) => row.address === bound.address)!;
  const fixed = info.network_info[0]!.network.subnets[0]!.ips[0]!.address;
  const web = await manager.securityGroups.create('p1', { name: 'web', description: 'web servers' });
  const app = await manager.securityGroups.create('p1', { name: 'app', description: 'app servers' });
  const rule = await manager.securityGroups.addRule('admin', {
    parentGroupId: web.group.id,
    ipProtocol: 'tcp',
    fromPort: 443,
    toPort: 443,
  });
  const defaultRule = await manager.securityGroups.createDefaultRule({ ipProtocol: 'icmp', fromPort: -1, toPort: -1 });
  const w: World = {
    shared: shared!.uuid,
    spare: spare!.uuid,
    fixed,
    freeFixed: fixed === '10.0.0.9' ? '10.0.0.10' : '10.0.0.9',
    floating: floating.address,
    bound: bound.address,
    boundHost: boundRow.host!,
    group: String(web.group.id),
    sourceGroup: String(app.group.id),
    rule: String(rule.rule.id),
    defaultRule: String(defaultRule.id),
  };
  const token = await api.token('ops', 'admin');
  // The world was built through the host layer; from here on the tests watch it.
  host.clear();
  executor.clear();
  return {
    database,
    api,
    w,
    token,
    host,
    executor,
    reconciler,
    stateDir,
    async close() {
      await api.close();
      await database.close();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

export function send(f: Fixture, request: Request): Promise<Reply> {
  return f.api.call(request.method, request.path, {
    token: request.token === undefined ? f.token : (request.token ?? undefined),
    ...(request.body === undefined ? {} : { body: request.body }),
    ...(request.raw === undefined ? {} : { raw: request.raw }),
    ...(request.headers ? { headers: request.headers } : {}),
  });
}

/** Stands in for the world when only the names of the cases are wanted (at collection time). */
export const PLACEHOLDER: World = {
  shared: 's',
  spare: 's',
  fixed: 'f',
  freeFixed: 'f',
  floating: 'f',
  bound: 'b',
  boundHost: 'h',
  group: '1',
  sourceGroup: '2',
  rule: '1',
  defaultRule: '1',
};

/** Every file under `dir` with a hash of its content and its mtime: equal twice means nothing was written. */
export function filesUnder(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    const digest = createHash('sha256').update(readFileSync(path)).digest('hex');
    files[path] = `${digest} ${statSync(path).mtimeMs}`;
  }
  return files;
}

/**
 * The whole contract of a refusal: a 4xx in Nova's fault shape with no stack trace,
 * path or driver detail, nothing asked of the host layer, no command run, the
 * database and every file under state_path as they were.
 */
export async function expectRefused(f: Fixture, request: Request): Promise<Reply> {
  // Compared with the state just before, so that one case that wrongly writes fails alone.
  const before = await snapshot(f.database.db);
  const files = filesUnder(f.stateDir);
  f.host.clear();
  f.executor.clear();
  const reply = await send(f, request);
  const shown = `${request.method} ${request.path.slice(0, 200)} answered ${reply.status}: ${reply.text.slice(0, 300)}`;
  expect(reply.status, shown).toBeGreaterThanOrEqual(400);
  expect(reply.status, shown).toBeLessThan(500);
  const message = expectFault(reply, reply.status);
  for (const leak of LEAKS) expect(message, 'no stack trace, path or driver detail').not.toMatch(leak);
  expect(f.host.kinds(), 'nothing asked of the host layer').toEqual([]);
  expect(f.executor.argvs(), 'no command run').toEqual([]);
  expect(await snapshot(f.database.db), 'the database unchanged').toEqual(before);
  expect(filesUnder(f.stateDir), 'no file under state_path changed').toEqual(files);
  return reply;
}
