/**
 * Bad requests never reach the domain and never give a 500: malformed JSON, wrong
 * types, missing and unknown fields, oversized bodies, wrong content types, unknown
 * routes and methods; each answered with Nova's fault shape, the database unchanged.
 * Unexpected exceptions give the generic 500 and are logged with their stack.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { INTERNAL_MESSAGE } from '../../src/api/errors.js';
import { QuotaExceeded, Unavailable } from '../../src/errors.js';
import type { NetworkManager } from '../../src/managers/manager.js';
import { type Api, expectFault, rawRequest, startApi, uuidOf } from '../support/api.js';
import { BACKENDS } from '../support/databases.js';
import { type Snapshot, snapshot } from '../support/dbState.js';
import { useDatabase } from '../support/managers.js';

const MAX = 2048;
const ALLOCATE = '/v2.1/os-novanet/instances';

describe.each(BACKENDS)('request validation on %s', (backend) => {
  const db = useDatabase(backend);
  let api: Api;
  let admin: string;
  let before: Snapshot;

  beforeAll(async () => {
    api = await startApi(db(), { maxBodyBytes: MAX });
  });

  afterAll(async () => {
    await api.close();
  });

  beforeEach(async () => {
    await api.manager.networks.create({ label: 'private', fixedRangeV4: '10.0.0.0/24' });
    admin = await api.token('ops', 'admin');
    before = await snapshot(db());
  });

  const unchanged = async () => expect(await snapshot(db())).toEqual(before);
  const post = (path: string, options: Parameters<Api['call']>[2]) => api.call('POST', path, { token: admin, ...options });
  const instance = (extra: Record<string, unknown> = {}) => ({ uuid: uuidOf(1), project_id: 'p1', host: 'compute1', ...extra });

  it('malformed JSON and invalid UTF-8 are 400 "Malformed request body"', async () => {
    for (const raw of ['{"instance": ', '{instance: 1}', "{'a': 1}", '[1,]', 'nul']) {
      expectFault(await post(ALLOCATE, { raw, headers: { 'Content-Type': 'application/json' } }), 400, 'Malformed request body');
    }
    expectFault(
      await post(ALLOCATE, { raw: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), headers: { 'Content-Type': 'application/json' } }),
      400,
      'Malformed request body: not valid UTF-8',
    );
    await unchanged();
  });

  // Issue 16, cause 1: the validation message once rendered such a value recursively and overflowed the stack (a 500).
  it.each(['mtu', 'vlan', 'priority', 'num_networks', 'network_size', 'multi_host', 'enable_dhcp', 'label', 'cidr'])(
    'a field %s holding a list nested 5,000 deep, well under the size limit, is a 400',
    async (field) => {
      const nested = `${'['.repeat(5000)}${']'.repeat(5000)}`;
      const raw = `{"network": {"label": "deep", "cidr": "10.9.0.0/28", "${field}": ${nested}}}`;
      expect(raw.length).toBeLessThan(MAX * 8);
      const big = await startApi(db(), { maxBodyBytes: 65536 });
      try {
        const reply = await big.call('POST', '/v2.1/os-networks', {
          token: admin,
          raw,
          headers: { 'Content-Type': 'application/json' },
        });
        expectFault(reply, 400, /nested/);
      } finally {
        await big.close();
      }
      await unchanged();
    },
  );

  it('any body nested deeper than the API reads is a 400, whatever the route; a shallow one is read', async () => {
    const deep = (depth: number) => `{"instance": ${'{"a": '.repeat(depth)}1${'}'.repeat(depth)}}`;
    expectFault(await post(ALLOCATE, { raw: deep(40), headers: { 'Content-Type': 'application/json' } }), 400, /nested more than 32 deep/);
    // Brackets inside strings are text, not nesting.
    const quoted = JSON.stringify({ instance: instance({ hostname: `${'['.repeat(100)}` }) });
    expectFault(
      await post(ALLOCATE, { raw: quoted, headers: { 'Content-Type': 'application/json' } }),
      400,
      /^hostname must be a DNS name/,
    );
    await unchanged();
  });

  it('a body that is not an object, or none at all, is 400 naming what is wrong', async () => {
    expectFault(await post(ALLOCATE, { body: [] }), 400, 'the request body must be an object, got a list');
    expectFault(await post(ALLOCATE, { body: 'instance' }), 400, 'the request body must be an object, got a string');
    expectFault(await post(ALLOCATE, { body: 42 }), 400, 'the request body must be an object, got an integer');
    expectFault(await post(ALLOCATE, { body: null }), 400, 'the request body must be an object, got null');
    expectFault(await post(ALLOCATE, {}), 400, 'the request needs a JSON body');
    expectFault(await post('/v2.1/os-networks', { body: { network: [] } }), 400, 'network must be an object, got a list');
    await unchanged();
  });

  it('wrong types are 400 naming the field', async () => {
    const cases: [unknown, string][] = [
      [{ instance: 'x' }, 'instance must be an object, got a string'],
      [{ instance: instance({ uuid: 5 }) }, 'instance.uuid must be a string, got an integer'],
      [{ instance: instance({ host: ['a'] }) }, 'instance.host must be a string, got a list'],
      [{ instance: instance({ hostname: true }) }, 'instance.hostname must be a string, got a boolean'],
      [{ instance: instance({ requested_networks: 'net' }) }, 'instance.requested_networks must be a list, got a string'],
      [
        { instance: instance({ requested_networks: [{ uuid: 1.5 }] }) },
        'instance.requested_networks[0].uuid must be a string, got a number',
      ],
      [{ instance: instance({ project_id: 'x'.repeat(300) }) }, 'instance.project_id must be at most 255 characters'],
    ];
    for (const [body, message] of cases) expectFault(await post(ALLOCATE, { body }), 400, message);
    expectFault(
      await post('/v2.1/os-networks', { body: { network: { label: 'x', cidr: '10.1.0.0/24', mtu: 'big' } } }),
      400,
      'network.mtu must be an integer from 68 to 65535, got "big"',
    );
    expectFault(
      await post('/v2.1/os-networks', { body: { network: { label: 'x', cidr: 10 } } }),
      400,
      'network.cidr must be a string, got an integer',
    );
    await unchanged();
  });

  it('missing required fields are 400 naming the field', async () => {
    expectFault(await post(ALLOCATE, { body: {} }), 400, 'instance is required');
    expectFault(await post(ALLOCATE, { body: { instance: { project_id: 'p1', host: 'c1' } } }), 400, 'instance.uuid is required');
    expectFault(await post(ALLOCATE, { body: { instance: { uuid: uuidOf(1), host: 'c1' } } }), 400, 'instance.project_id is required');
    expectFault(
      await post(ALLOCATE, { body: { instance: instance({ requested_networks: [{}] }) } }),
      400,
      'instance.requested_networks[0].uuid is required',
    );
    expectFault(await post('/v2.1/os-networks', { body: {} }), 400, 'network is required');
    await unchanged();
  });

  it('unknown fields are 400 naming them (Nova rejects additional properties)', async () => {
    expectFault(await post(ALLOCATE, { body: { instance: instance(), server: {} } }), 400, 'the request body has unknown field "server"');
    expectFault(
      await post(ALLOCATE, { body: { instance: instance({ flavor: 1, image: 2 }) } }),
      400,
      'instance has unknown fields "flavor", "image"',
    );
    expectFault(
      await post(ALLOCATE, { body: { instance: instance({ requested_networks: [{ uuid: uuidOf(9), port: 'p' }] }) } }),
      400,
      'instance.requested_networks[0] has unknown field "port"',
    );
    await unchanged();
  });

  it('bodies over max_body_bytes are 413 overLimit, declared or chunked, and the connection is closed', async () => {
    const big = { instance: instance({ hostname: 'h'.repeat(MAX) }) };
    const reply = await post(ALLOCATE, { body: big });
    expectFault(reply, 413, `Request is too large. (the limit is ${MAX} bytes)`);
    expect(reply.headers.get('connection')).toBe('close');
    // A large body is refused from its Content-Length, before it is read.
    expectFault(await post(ALLOCATE, { raw: 'x'.repeat(4 * 1024 * 1024), headers: { 'Content-Type': 'application/json' } }), 413);
    const chunked = await rawRequest(
      api.url,
      'POST',
      ALLOCATE,
      { 'X-Auth-Token': admin, 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' },
      ['{"instance": {"hostname": "', 'x'.repeat(MAX), '"}}'],
    );
    expect(chunked.status).toBe(413);
    expect(JSON.parse(chunked.text)).toEqual({ overLimit: { code: 413, message: `Request is too large. (the limit is ${MAX} bytes)` } });
    // Exactly the limit is read (and then validated); whitespace pads it.
    const text = JSON.stringify({ instance: instance({ host: 'bad host' }) });
    const fits = await post(ALLOCATE, { raw: text + ' '.repeat(MAX - text.length), headers: { 'Content-Type': 'application/json' } });
    expectFault(fits, 400, /^host must be a DNS name/);
    expectFault(
      await post(ALLOCATE, { raw: `${text}${' '.repeat(MAX - text.length + 1)}`, headers: { 'Content-Type': 'application/json' } }),
      413,
    );
    await unchanged();
  });

  it('a body that is not JSON is 415 badMediaType; JSON with a charset or no Content-Type at all is read', async () => {
    const json = JSON.stringify({ instance: instance({ host: 'bad host' }) });
    expectFault(
      await post(ALLOCATE, { raw: json, headers: { 'Content-Type': 'text/plain' } }),
      415,
      'Unsupported Content-Type "text/plain": request bodies must be application/json',
    );
    expectFault(await post(ALLOCATE, { raw: 'instance=1', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } }), 415);
    expectFault(
      await post(ALLOCATE, { raw: json, headers: { 'Content-Type': 'application/json; charset=utf-8' } }),
      400,
      /^host must be a DNS name/,
    );
    const bare = await rawRequest(api.url, 'POST', ALLOCATE, { 'X-Auth-Token': admin, 'Content-Length': String(Buffer.byteLength(json)) }, [
      json,
    ]);
    expect(bare.status).toBe(400);
    expect(JSON.parse(bare.text).badRequest.message).toMatch(/^host must be a DNS name/);
    await unchanged();
  });

  it('a malformed Content-Type, or JSON in another charset, is 415 and never taken as no Content-Type (issue 16)', async () => {
    const json = JSON.stringify({ instance: instance() });
    for (const header of [';;;', 'application/json;;;', 'app lication/json', 'application/json, text/html', 'application/json; charset']) {
      expectFault(await post(ALLOCATE, { raw: json, headers: { 'Content-Type': header } }), 415, /^Malformed Content-Type /);
    }
    expectFault(
      await post(ALLOCATE, { raw: json, headers: { 'Content-Type': 'application/json; charset=latin1' } }),
      415,
      /^Unsupported charset in Content-Type "application\/json; charset=latin1": JSON is UTF-8$/,
    );
    await unchanged();
  });

  it('a path segment with blanks around it or a control character is 400, never trimmed into another (issue 16)', async () => {
    const network = (await api.manager.networks.list())[0];
    await api.manager.allocation.allocate({ instanceUuid: uuidOf(1), projectId: 'p1', host: 'compute1' });
    const fixed = (await api.manager.fixedIps.list()).find((row) => row.instanceUuid !== null);
    before = await snapshot(db());
    const cases: [string, string][] = [
      ['GET', `/v2.1/os-fixed-ips/%20${fixed?.address}`],
      ['GET', `/v2.1/os-fixed-ips/${fixed?.address}%0A`],
      ['POST', `/v2.1/os-fixed-ips/${fixed?.address}%09/action`],
      ['GET', `/v2.1/os-networks/%20${network?.uuid}`],
      ['DELETE', `/v2.1/os-networks/${network?.uuid}%20`],
      ['DELETE', `${ALLOCATE}/${uuidOf(1)}%0D`],
      ['GET', '/v2.1/os-floating-ips/1%00'],
      ['GET', '/v2.1/p1%20/os-networks'],
      ['GET', '/v2.1/os-networks/%E0%A4%A'],
    ];
    for (const [method, path] of cases) {
      const body = method === 'POST' ? { reserve: null } : undefined;
      expectFault(await api.call(method, path, { token: admin, body }), 400, /^Malformed request URL: /);
    }
    await unchanged();
  });

  it('unknown routes are 404 itemNotFound, with or without a token', async () => {
    for (const path of [
      '/',
      '/v2.1',
      '/v2.1/flavors',
      '/v3/os-networks',
      '/v2.1/os-networks/a/b',
      '/v2.1/p1/os-networks/x/action/y',
      '/os-networks',
    ]) {
      expectFault(await api.call('GET', path), 404, /^No resource at /);
      expectFault(await api.call('GET', path, { token: admin }), 404);
    }
  });

  it('a known path with another method is 405 badMethod with Allow; OPTIONS lists the methods', async () => {
    const reply = await api.call('PUT', '/v2.1/os-networks', { token: admin, body: {} });
    expectFault(reply, 405, 'The method PUT is not allowed on this resource; allowed: HEAD, GET, POST');
    expect(reply.headers.get('allow')).toBe('HEAD, GET, POST');
    expectFault(await api.call('PATCH', `/v2.1/p1/os-networks/${uuidOf(1)}`), 405, /allowed: HEAD, GET, DELETE/);
    expectFault(await api.call('POST', '/healthz'), 405, /allowed: HEAD, GET/);
    expectFault(await api.call('GET', '/v2.1/os-fixed-ips/10.0.0.1/action', { token: admin }), 405, /allowed: POST/);
    const options = await api.call('OPTIONS', '/v2.1/os-novanet/instances');
    expect(options.status).toBe(204);
    expect(options.headers.get('allow')).toBe('POST');
    await unchanged();
  });

  it('logs one JSON-able line per request with method, path, status and ms', async () => {
    api.logs.length = 0;
    await api.call('GET', '/v2.1/p1/os-networks?x=1', { token: admin });
    await api.call('GET', '/nowhere');
    await api.call('GET', '/metrics');
    const lines = api.logs.filter((line) => line.event === 'api.request');
    expect(lines.map((line) => [line.fields.method, line.fields.path, line.fields.status])).toEqual([
      ['GET', '/v2.1/p1/os-networks', 200],
      ['GET', '/nowhere', 404],
    ]);
    expect(typeof lines[0]!.fields.ms).toBe('number');
    expect(() => JSON.stringify(api.logs)).not.toThrow();
  });
});

describe('unexpected failures', () => {
  const db = useDatabase('sqlite');

  /** The real manager, except for networks.list. */
  function failing(real: NetworkManager, failure: () => unknown): NetworkManager {
    const networks = new Proxy(real.networks, {
      get(target, property, receiver) {
        if (property === 'list')
          return async () => {
            throw failure();
          };
        return Reflect.get(target, property, receiver) as unknown;
      },
    });
    return { ...real, networks };
  }

  async function withFailure(failure: () => unknown, check: (api: Api, token: string) => Promise<void>) {
    const base = await startApi(db());
    await base.close();
    const api = await startApi(db(), { manager: failing(base.manager, failure) });
    try {
      await check(api, await api.token('ops', 'admin'));
    } finally {
      await api.close();
    }
  }

  it('a plain Error is the generic 500 computeFault, without its message or stack, and is logged with its stack', async () => {
    await withFailure(
      () => new Error('connect ECONNREFUSED secret-db.internal:3306'),
      async (api, token) => {
        const reply = await api.call('GET', '/v2.1/os-networks', { token });
        expectFault(reply, 500, INTERNAL_MESSAGE);
        expect(reply.text).not.toContain('secret-db');
        expect(reply.text).not.toContain('at ');
        const logged = api.logs.find((line) => line.event === 'api.error');
        expect(logged?.fields).toMatchObject({
          method: 'GET',
          path: '/v2.1/os-networks',
          error: 'connect ECONNREFUSED secret-db.internal:3306',
        });
        expect(String(logged?.fields.stack)).toMatch(/^Error: connect ECONNREFUSED[\s\S]*\n\s+at /);
        expect(api.logs.find((line) => line.event === 'api.request')?.fields.status).toBe(500);
      },
    );
  });

  it('a thrown non-Error is a 500 as well', async () => {
    await withFailure(
      () => 'just a string',
      async (api, token) => {
        expectFault(await api.call('GET', '/v2.1/os-networks', { token }), 500, INTERNAL_MESSAGE);
      },
    );
  });

  it('a database that cannot be reached is 503 with a generic message; the driver error is logged', async () => {
    const refused = () => Object.assign(new Error('connect ECONNREFUSED 10.1.2.3:3306'), { code: 'ECONNREFUSED' });
    await withFailure(refused, async (api, token) => {
      const reply = await api.call('GET', '/v2.1/os-networks', { token });
      expectFault(reply, 503, 'The database is unreachable; try again later.');
      expect(reply.text).not.toContain('10.1.2.3');
      expect(api.logs.find((line) => line.event === 'api.database_unreachable')?.fields.error).toBe('connect ECONNREFUSED 10.1.2.3:3306');
    });
    const timeout = () => Object.assign(new Error('Knex: Timeout acquiring a connection.'), { name: 'KnexTimeoutError' });
    await withFailure(timeout, async (api, token) => {
      expectFault(await api.call('GET', '/v2.1/os-networks', { token }), 503);
    });
  });

  it('unavailable is 503 serviceUnavailable and quota is 403, never 500', async () => {
    await withFailure(
      () => new Unavailable('database conflict persisted after 8 attempts'),
      async (api, token) => {
        expectFault(await api.call('GET', '/v2.1/os-networks', { token }), 503, 'database conflict persisted after 8 attempts');
      },
    );
    await withFailure(
      () => new QuotaExceeded('quota of floating IPs exceeded'),
      async (api, token) => {
        expectFault(await api.call('GET', '/v2.1/os-networks', { token }), 403, 'quota of floating IPs exceeded');
      },
    );
  });
});
