/**
 * The bad-input corpus against every API route (issue 7): each field of each route's
 * URL and body gets every bad value of its kind (test/support/badInputs.ts), each body
 * every wrong shape. Each is answered with a 4xx in Nova's fault shape, without a
 * stack trace or a file path, writes nothing to the database, and asks nothing of the
 * host: the manager's host layer is the real reconciler over a recording executor,
 * which must have run no command. An admin token is used, so authorization is never
 * what refuses. One API on one SQLite database for the whole file: the values are
 * refused before the backend could make a difference.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_BODY_BYTES } from '../../src/api/body.js';
import { createHostLayer, type Reconciler } from '../../src/host/index.js';
import { createManager } from '../../src/managers/registry.js';
import { type Api, expectFault, type Reply, registeredRoutes, startApi, uuidOf } from '../support/api.js';
import { type Bad, badIntegers, badValues, type Kind } from '../support/badInputs.js';
import { freshDatabase, type TestDatabase, testConfig } from '../support/databases.js';
import { snapshot } from '../support/dbState.js';
import { RecordingExecutor } from '../support/recordingExecutor.js';
import { RecordingHost } from '../support/recordingHost.js';
import { useFixture, withFixture } from '../support/useFixture.js';

/** What a valid request needs from the world: ids and addresses made in beforeAll. */
interface World {
  shared: string;
  spare: string;
  /** A fixed IP of instance 1, and a free one of the shared network. */
  fixed: string;
  freeFixed: string;
  /** p1's floating IPs: one free, one associated with instance 1 (bound on `boundHost`). */
  floating: string;
  bound: string;
  boundHost: string;
}

/** A field's bad values: a kind of string, or an integer range. */
type FieldSpec = Kind | { min: number; max: number };

interface RouteCase {
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

const NETWORK_FIELDS: Record<string, FieldSpec> = {
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

const ROUTES: RouteCase[] = [
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
];

/** A request to send: method, URL path, and a JSON body or raw bytes. */
interface Request {
  method: string;
  path: string;
  body?: unknown;
  raw?: string | Buffer;
  headers?: Record<string, string>;
}

function baseRequest(row: RouteCase, w: World, projectInUrl?: string): Request {
  const [method, pattern] = row.route.split(' ') as [string, string];
  const params = row.params?.(w) ?? {};
  let path = pattern.replace(/:(\w+)/g, (_, name: string) => encodeURIComponent(params[name]!));
  if (projectInUrl !== undefined) path = path.replace(/^\/v2\.1\//, `/v2.1/${encodeURIComponent(projectInUrl)}/`);
  return { method, path, ...(row.body ? { body: row.body(w) } : {}) };
}

/** The body with `value` at the dotted `path` (list indexes are numbers). */
function withValue(body: unknown, path: string, value: unknown): unknown {
  const copy = structuredClone(body) as Record<string, unknown>;
  const keys = path.split('.');
  let node: Record<string, unknown> = copy;
  for (const key of keys.slice(0, -1)) node = node[key] as Record<string, unknown>;
  node[keys.at(-1)!] = value;
  return copy;
}

/** The request of `row` with the field `field` set to `value`. */
function substituted(row: RouteCase, w: World, field: string, value: unknown): Request {
  if (field === 'url:project_id') return baseRequest(row, w, String(value));
  if (field.startsWith('path:')) {
    return baseRequest({ ...row, params: (world) => ({ ...row.params?.(world), [field.slice(5)]: String(value) }) }, w);
  }
  const base = baseRequest(row, w);
  return { ...base, body: withValue(base.body, field, value) };
}

/**
 * Values a URL can carry: strings (other JSON types are text in a URL), not so long
 * that Node's HTTP server refuses the request line itself (431, before novanet sees
 * it), and not empty (`/os-networks/` is another route, the list).
 */
const fitsUrl = (entry: Bad) => typeof entry.value === 'string' && entry.value.length <= 4096 && entry.value !== '';

function casesOf(row: RouteCase): { title: string; field: string; value: unknown }[] {
  return Object.entries(row.fields).flatMap(([field, spec]) => {
    let values = typeof spec === 'string' ? badValues(spec) : badIntegers(spec.min, spec.max);
    if (field.startsWith('path:') || field.startsWith('url:')) values = values.filter(fitsUrl);
    return values.map((entry) => ({ title: `${row.route} (${row.what}): ${field} = ${entry.name}`, field, value: entry.value }));
  });
}

/** Bodies of the wrong shape, as raw bytes or JSON; `envelope` is the valid body's only top-level key. */
function wrongShapes(valid: unknown, maxBodyBytes: number): { name: string; request: Pick<Request, 'body' | 'raw' | 'headers'> }[] {
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
const LEAKS = [
  /\n\s+at /,
  /\bat \S+ \(/,
  /\/work\/|\/src\/|node_modules|\.ts:\d+|\.js:\d+/,
  /SQLITE_|ER_[A-Z_]+|knex|TypeError|ReferenceError/,
];

/** One API on one fresh SQLite database, with the world of a valid request of every row. */
interface Fixture {
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

async function fixture(): Promise<Fixture> {
  const database = await freshDatabase('sqlite');
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
  const w: World = {
    shared: shared!.uuid,
    spare: spare!.uuid,
    fixed,
    freeFixed: fixed === '10.0.0.9' ? '10.0.0.10' : '10.0.0.9',
    floating: floating.address,
    bound: bound.address,
    boundHost: boundRow.host!,
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

function send(f: Fixture, request: Request): Promise<Reply> {
  return f.api.call(request.method, request.path, {
    token: f.token,
    ...(request.body === undefined ? {} : { body: request.body }),
    ...(request.raw === undefined ? {} : { raw: request.raw }),
    ...(request.headers ? { headers: request.headers } : {}),
  });
}

/** Stands in for the world when only the names of the cases are wanted (at collection time). */
const PLACEHOLDER: World = { shared: 's', spare: 's', fixed: 'f', freeFixed: 'f', floating: 'f', bound: 'b', boundHost: 'h' };

const FIELD_CASES = ROUTES.flatMap((row) => casesOf(row).map((entry) => ({ ...entry, row })));
const SHAPE_CASES = ROUTES.filter((row) => row.body !== undefined).flatMap((row) =>
  wrongShapes(row.body!(PLACEHOLDER), 1)
    .filter((shape) => !row.acceptsShapes?.includes(shape.name))
    .map((shape) => ({ title: `${row.route} (${row.what}): body ${shape.name}`, row, shape: shape.name })),
);

describe('bad input to every API route', () => {
  const current = useFixture(fixture);

  /** The whole contract of a refusal. */
  async function expectRefused(request: Request): Promise<void> {
    const f = current();
    // Compared with the state just before, so that one case that wrongly writes fails alone.
    const before = await snapshot(f.database.db);
    f.host.clear();
    f.executor.clear();
    const reply = await send(f, request);
    expect(
      reply.status,
      `${request.method} ${request.path.slice(0, 200)} answered ${reply.status}: ${reply.text.slice(0, 300)}`,
    ).toBeGreaterThanOrEqual(400);
    expect(reply.status, reply.text.slice(0, 300)).toBeLessThan(500);
    const message = expectFault(reply, reply.status);
    for (const leak of LEAKS) expect(message, 'no stack trace, path or driver detail').not.toMatch(leak);
    expect(f.host.kinds(), 'nothing asked of the host layer').toEqual([]);
    expect(f.executor.argvs(), 'no command run').toEqual([]);
    expect(await snapshot(f.database.db), 'the database unchanged').toEqual(before);
  }

  it('has a row for every route the app registered', () => {
    expect([...new Set(ROUTES.map((row) => row.route))].sort()).toEqual(registeredRoutes(current().api.app));
  });

  it.each(FIELD_CASES)('$title', async ({ row, field, value }) => {
    await expectRefused(substituted(row, current().w, field, value));
  });

  it.each(SHAPE_CASES)('$title', async ({ row, shape }) => {
    const f = current();
    const { body: _valid, ...base } = baseRequest(row, f.w);
    const wanted = wrongShapes(row.body!(f.w), DEFAULT_MAX_BODY_BYTES).find((candidate) => candidate.name === shape)!;
    await expectRefused({ ...base, ...wanted.request });
  });
});

/**
 * Free text (labels, pool names) may be any printable Unicode, so shell and SQL
 * shapes are data there: stored as given, and never on a command line or in a file
 * the host layer writes, even through a full reconcile.
 */
describe('injection-shaped free text', () => {
  it('is stored as given and reaches no command line', () =>
    withFixture(fixture, async (f) => {
      const label = ';rm -rf / $(reboot) `halt` "; DROP TABLE networks; --';
      const pool = "' OR 1=1 -- | nc 198.51.100.1 9";
      const created = await send(f, { method: 'POST', path: '/v2.1/os-networks', body: { network: { label, cidr: '10.9.0.0/28' } } });
      expect(created.status, created.text).toBe(200);
      const bulk = await send(f, {
        method: 'POST',
        path: '/v2.1/os-floating-ips-bulk',
        body: { floating_ips_bulk_create: { ip_range: '192.0.2.64/29', pool } },
      });
      expect(bulk.status, bulk.text).toBe(200);
      await f.reconciler.reconcileAll();
      const shown = (
        await send(f, { method: 'GET', path: `/v2.1/os-networks/${(created.json as { network: { id: string } }).network.id}` })
      ).json as { network: { label: string } };
      expect(shown.network.label).toBe(label);
      const words = f.executor.commands.flatMap((spec) => [...spec.argv, spec.input ?? '']);
      expect(words.length, 'the reconcile ran commands').toBeGreaterThan(0);
      for (const word of words) {
        for (const text of [label, pool, 'reboot', 'DROP TABLE', 'OR 1=1']) expect(word).not.toContain(text);
      }
      const written = readdirSync(f.stateDir, { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile());
      for (const file of written) {
        const text = readFileSync(join(file.parentPath, file.name), 'utf8');
        for (const part of ['reboot', 'DROP TABLE', 'OR 1=1']) expect(text, file.name).not.toContain(part);
      }
    }));
});

/**
 * Each row's request as it stands, unchanged, succeeds (in a world of its own, as
 * most of them write): so every refusal above is the bad value's doing, not the rest
 * of a request that was wrong anyway.
 */
describe('the valid request of every row', () => {
  it.each(ROUTES.map((row) => ({ title: `${row.route} (${row.what})`, row })))('$title succeeds', ({ row }) =>
    withFixture(fixture, async (f) => {
      const reply = await send(f, baseRequest(row, f.w));
      expect(reply.status, reply.text.slice(0, 300)).toBeGreaterThanOrEqual(200);
      expect(reply.status, reply.text.slice(0, 300)).toBeLessThan(300);
    }),
  );
});
