/**
 * Nova's os-floating-ip-pools, os-floating-ips and os-floating-ips-bulk through HTTP
 * on each backend: Nova's JSON shapes and status codes, scoping to the caller's
 * project (another project's address is 404, never shown), and every refusal leaving
 * the database as it was.
 */
import { describe, expect, it } from 'vitest';
import { expectFault, type Reply } from '../support/api.js';
import { BACKENDS } from '../support/databases.js';
import { snapshot } from '../support/dbState.js';
import { type FloatingWorld, floatingRow, useFloatingWorld } from '../support/floatingWorld.js';
import { countRows, useDatabase } from '../support/managers.js';

type View = Record<string, unknown>;

const floatingIpOf = (reply: Reply): View => (reply.json as { floating_ip: View }).floating_ip;

describe.each(BACKENDS)('floating IP API on %s', (backend) => {
  const db = useDatabase(backend);
  let w!: FloatingWorld;
  const { call, rebuild } = useFloatingWorld(db, (world) => {
    w = world;
  });

  /** Runs the requests and checks each is refused with `status`, the database and host layer untouched. */
  async function expectRefusals(status: number, requests: [reply: () => Promise<Reply>, message: RegExp | string][]): Promise<void> {
    const before = await snapshot(db());
    for (const [request, message] of requests) expectFault(await request(), status, message);
    expect(await snapshot(db())).toEqual(before);
    expect(w.api.h.host.changes).toEqual([]);
  }

  describe('GET /os-floating-ip-pools', () => {
    it('lists the pools by name, under every URL form', async () => {
      for (const path of ['/v2.1/os-floating-ip-pools', '/v2/os-floating-ip-pools', '/v2.1/p1/os-floating-ip-pools']) {
        const reply = await call('GET', path, w.p1);
        expect(reply.status).toBe(200);
        expect(reply.json).toEqual({ floating_ip_pools: [{ name: 'nova' }, { name: 'public' }] });
      }
    });
  });

  describe('POST /os-floating-ips', () => {
    it('allocates from default_floating_pool without a body, with null, or with pool null', async () => {
      const reply = await w.api.call('POST', '/v2.1/os-floating-ips', { token: w.p1 });
      expect(reply.status).toBe(200);
      const row = await floatingRow(db(), '203.0.113.1');
      expect(floatingIpOf(reply)).toEqual({ id: row.id, ip: '203.0.113.1', pool: 'nova', fixed_ip: null, instance_id: null });
      expect(row).toMatchObject({ projectId: 'p1', fixedIpId: null, autoAssigned: false });
      expect(floatingIpOf(await call('POST', '/v2.1/os-floating-ips', w.p1, null))).toMatchObject({ ip: '203.0.113.2', pool: 'nova' });
      expect(floatingIpOf(await call('POST', '/v2.1/os-floating-ips', w.p1, { pool: null }))).toMatchObject({
        ip: '203.0.113.3',
        pool: 'nova',
      });
      expect(w.api.h.host.changes).toEqual([]);
    });

    it("allocates from a named pool, to the URL's project when an admin names one", async () => {
      expect(floatingIpOf(await call('POST', '/v2.1/os-floating-ips', w.p2, { pool: 'public' }))).toMatchObject({
        ip: '198.51.100.1',
        pool: 'public',
      });
      expect(await floatingRow(db(), '198.51.100.1')).toMatchObject({ projectId: 'p2' });
      expect((await call('POST', '/v2.1/p7/os-floating-ips', w.admin, { pool: 'public' })).status).toBe(200);
      expect(await floatingRow(db(), '198.51.100.2')).toMatchObject({ projectId: 'p7' });
    });

    it('answers an unknown pool and an exhausted pool with 404', async () => {
      await call('POST', '/v2.1/os-floating-ips', w.p1, { pool: 'public' });
      await call('POST', '/v2.1/os-floating-ips', w.p1, { pool: 'public' });
      await expectRefusals(404, [
        [() => call('POST', '/v2.1/os-floating-ips', w.p1, { pool: 'nope' }), 'floating IP pool nope not found'],
        [() => call('POST', '/v2.1/os-floating-ips', w.p2, { pool: 'public' }), 'no more floating IPs in pool public'],
      ]);
    });

    it('answers over quota with 403', async () => {
      await db().knex('quotas').insert({ project_id: 'p1', resource: 'floating_ips', hard_limit: 1 });
      await call('POST', '/v2.1/os-floating-ips', w.p1);
      await expectRefusals(403, [
        [
          () => call('POST', '/v2.1/os-floating-ips', w.p1),
          /^Quota exceeded for floating_ips: Requested 1, but already used 1 of 1 floating_ips/,
        ],
      ]);
    });

    it('refuses malformed bodies with 400', async () => {
      const post = (raw: string) => () =>
        w.api.call('POST', '/v2.1/os-floating-ips', { token: w.p1, raw, headers: { 'Content-Type': 'application/json' } });
      await expectRefusals(400, [
        [() => call('POST', '/v2.1/os-floating-ips', w.p1, { pool: 5 }), 'pool must be a string, got an integer'],
        [() => call('POST', '/v2.1/os-floating-ips', w.p1, { pool: 'nova', count: 2 }), 'the request body has unknown field "count"'],
        [() => call('POST', '/v2.1/os-floating-ips', w.p1, ['nova']), 'the request body must be an object, got a list'],
        [() => call('POST', '/v2.1/os-floating-ips', w.p1, { pool: '' }), 'pool must be 1 to 255 characters, got 0'],
        [post('{"pool": '), 'Malformed request body'],
      ]);
    });
  });

  describe('GET /os-floating-ips', () => {
    it("lists only the caller's project's addresses, with Nova's fields", async () => {
      const mine = floatingIpOf(await call('POST', '/v2.1/os-floating-ips', w.p1));
      await call('POST', '/v2.1/os-floating-ips', w.p2);
      const reply = await call('GET', '/v2.1/os-floating-ips', w.p1);
      expect(reply.status).toBe(200);
      expect(reply.json).toEqual({ floating_ips: [mine] });
      expect(
        ((await call('GET', '/v2.1/os-floating-ips', w.p2)).json as { floating_ips: View[] }).floating_ips.map((entry) => entry.ip),
      ).toEqual(['203.0.113.2']);
      // An admin's list is its own project's too (Nova's); os-floating-ips-bulk shows all.
      expect((await call('GET', '/v2.1/os-floating-ips', w.admin)).json).toEqual({ floating_ips: [] });
      expect((await call('GET', '/v2.1/p1/os-floating-ips', w.admin)).json).toEqual({ floating_ips: [mine] });
    });
  });

  describe('GET /os-floating-ips/{id}', () => {
    it('shows an address by id or by address, with its association', async () => {
      const mine = floatingIpOf(await call('POST', '/v2.1/os-floating-ips', w.p1));
      expect(floatingIpOf(await call('GET', `/v2.1/os-floating-ips/${String(mine.id)}`, w.p1))).toEqual(mine);
      expect(floatingIpOf(await call('GET', '/v2.1/os-floating-ips/203.0.113.1', w.p1))).toEqual(mine);
      await w.api.manager.floating.associate({ address: '203.0.113.1', instanceUuid: w.vm1, actor: { projectId: 'p1' } });
      expect(floatingIpOf(await call('GET', '/v2.1/os-floating-ips/203.0.113.1', w.p1))).toEqual({
        ...mine,
        fixed_ip: w.fixed.vm1,
        instance_id: w.vm1,
      });
      // An admin sees any project's.
      expect(floatingIpOf(await call('GET', `/v2.1/os-floating-ips/${String(mine.id)}`, w.admin))).toMatchObject({ ip: '203.0.113.1' });
    });

    it("answers 404 for unknown ids, names, free addresses and other projects' addresses, naming only what was asked", async () => {
      const theirs = floatingIpOf(await call('POST', '/v2.1/os-floating-ips', w.p2));
      const free = await floatingRow(db(), '203.0.113.5');
      const get = (ref: string) => () => call('GET', `/v2.1/os-floating-ips/${ref}`, w.p1);
      await expectRefusals(404, [
        [get(String(theirs.id)), `floating IP with id ${String(theirs.id)} not found for project p1`],
        [get('203.0.113.1'), 'floating IP 203.0.113.1 not found for project p1'],
        [get(String(free.id)), `floating IP with id ${String(free.id)} not found for project p1`],
        [get('999999'), 'floating IP with id 999999 not found for project p1'],
        [get('my-address'), 'floating IP "my-address" not found: give its id or its IPv4 address'],
        [get('192.0.2.77'), 'floating IP 192.0.2.77 not found for project p1'],
      ]);
    });
  });

  describe('DELETE /os-floating-ips/{id}', () => {
    it('releases an address by id or by address (202)', async () => {
      const first = floatingIpOf(await call('POST', '/v2.1/os-floating-ips', w.p1));
      await call('POST', '/v2.1/os-floating-ips', w.p1);
      const reply = await call('DELETE', `/v2.1/os-floating-ips/${String(first.id)}`, w.p1);
      expect(reply.status).toBe(202);
      expect(reply.text).toBe('');
      expect(await floatingRow(db(), '203.0.113.1')).toMatchObject({ projectId: null });
      expect((await call('DELETE', '/v2.1/os-floating-ips/203.0.113.2', w.p1)).status).toBe(202);
      expect(await floatingRow(db(), '203.0.113.2')).toMatchObject({ projectId: null });
      expect(w.api.h.host.changes).toEqual([]);
    });

    it('disassociates an associated address first, and tells the host layer', async () => {
      await call('POST', '/v2.1/os-floating-ips', w.p1);
      await w.api.manager.floating.associate({ address: '203.0.113.1', instanceUuid: w.vm1, actor: { projectId: 'p1' } });
      w.api.h.host.clear();
      expect((await call('DELETE', '/v2.1/os-floating-ips/203.0.113.1', w.p1)).status).toBe(202);
      expect(await floatingRow(db(), '203.0.113.1')).toEqual(expect.objectContaining({ projectId: null, fixedIpId: null, host: null }));
      expect(w.api.h.host.changes).toEqual([{ kind: 'floating-updated', address: '203.0.113.1' }]);
    });

    it("lets an admin release another project's address", async () => {
      const theirs = floatingIpOf(await call('POST', '/v2.1/os-floating-ips', w.p2));
      expect((await call('DELETE', `/v2.1/os-floating-ips/${String(theirs.id)}`, w.admin)).status).toBe(202);
      expect(await floatingRow(db(), '203.0.113.1')).toMatchObject({ projectId: null });
    });

    it("refuses other projects', unknown and unallocated addresses (404), changing nothing", async () => {
      const theirs = floatingIpOf(await call('POST', '/v2.1/os-floating-ips', w.p2));
      await expectRefusals(404, [
        [() => call('DELETE', `/v2.1/os-floating-ips/${String(theirs.id)}`, w.p1), /not found for project p1$/],
        [() => call('DELETE', '/v2.1/os-floating-ips/203.0.113.1', w.p1), 'floating IP 203.0.113.1 not found for project p1'],
        [() => call('DELETE', '/v2.1/os-floating-ips/424242', w.p1), /^floating IP with id 424242 not found/],
        [() => call('DELETE', '/v2.1/os-floating-ips/203.0.113.6', w.admin), 'floating IP 203.0.113.6 is not allocated to any project'],
      ]);
    });
  });

  describe('auto-assigned addresses', () => {
    it('cannot be released by users (403), changing nothing', async () => {
      // A world of its own, where every instance got an address at boot.
      await rebuild({ config: { auto_assign_floating_ip: 'true' } });
      const [assigned] = ((await call('GET', '/v2.1/os-floating-ips', w.p1)).json as { floating_ips: View[] }).floating_ips;
      expect(assigned).toMatchObject({ instance_id: w.vm1, fixed_ip: w.fixed.vm1 });
      await expectRefusals(403, [
        [() => call('DELETE', `/v2.1/os-floating-ips/${String(assigned!.id)}`, w.p1), /^floating IP 203\.0\.113\.1 was auto-assigned/],
      ]);
    });
  });

  describe('os-floating-ips-bulk', () => {
    const info = (reply: Reply) => (reply.json as { floating_ip_info: View[] }).floating_ip_info;

    it('lists every address of every project for an admin, with Nova fields', async () => {
      await call('POST', '/v2.1/os-floating-ips', w.p1);
      await w.api.manager.floating.associate({ address: '203.0.113.1', instanceUuid: w.vm1, actor: { projectId: 'p1' } });
      await call('POST', '/v2.1/os-floating-ips', w.p2, { pool: 'public' });
      const reply = await call('GET', '/v2.1/os-floating-ips-bulk', w.admin);
      expect(reply.status).toBe(200);
      const rows = info(reply);
      expect(rows).toHaveLength(8);
      expect(rows[0]).toEqual({
        address: '203.0.113.1',
        fixed_ip: w.fixed.vm1,
        instance_uuid: w.vm1,
        interface: null,
        pool: 'nova',
        project_id: 'p1',
      });
      expect(rows[1]).toEqual({
        address: '203.0.113.2',
        fixed_ip: null,
        instance_uuid: null,
        interface: null,
        pool: 'nova',
        project_id: null,
      });
      expect(rows[6]).toEqual({
        address: '198.51.100.1',
        fixed_ip: null,
        instance_uuid: null,
        interface: 'eth3',
        pool: 'public',
        project_id: 'p2',
      });
    });

    it('lists the addresses bound on a host; a host with none is 404', async () => {
      await call('POST', '/v2.1/os-floating-ips', w.p1);
      await w.api.manager.floating.associate({ address: '203.0.113.1', instanceUuid: w.vm1, actor: { projectId: 'p1' } });
      // The network host (the harness's `host`) binds the addresses of single-host networks.
      expect(info(await call('GET', '/v2.1/os-floating-ips-bulk/nethost', w.admin)).map((row) => row.address)).toEqual(['203.0.113.1']);
      expectFault(await call('GET', '/v2.1/os-floating-ips-bulk/compute9', w.admin), 404, 'Floating IP not found for host compute9.');
    });

    it('creates a range, with or without pool and interface', async () => {
      const reply = await call('POST', '/v2.1/os-floating-ips-bulk', w.admin, {
        floating_ips_bulk_create: { ip_range: '192.0.2.0/29', pool: 'bulk', interface: 'eth9' },
      });
      expect(reply.status).toBe(200);
      expect(reply.json).toEqual({ floating_ips_bulk_create: { ip_range: '192.0.2.0/29', pool: 'bulk', interface: 'eth9' } });
      expect(await countRows(db(), 'floating_ips', { pool: 'bulk', interface: 'eth9' })).toBe(6);
      const single = await call('POST', '/v2.1/os-floating-ips-bulk', w.admin, { floating_ips_bulk_create: { ip_range: '192.0.2.200' } });
      // No pool: default_floating_pool; no interface: null, i.e. public_interface when bound.
      expect(single.json).toEqual({ floating_ips_bulk_create: { ip_range: '192.0.2.200', pool: 'nova', interface: null } });
      expect(await floatingRow(db(), '192.0.2.200')).toMatchObject({ projectId: null });
    });

    it('deletes a range with PUT /delete', async () => {
      await call('POST', '/v2.1/os-floating-ips-bulk', w.admin, { floating_ips_bulk_create: { ip_range: '192.0.2.0/29' } });
      const reply = await call('PUT', '/v2.1/os-floating-ips-bulk/delete', w.admin, { ip_range: '192.0.2.0/29' });
      expect(reply.status).toBe(200);
      expect(reply.json).toEqual({ floating_ips_bulk_delete: '192.0.2.0/29' });
      expect(await countRows(db(), 'floating_ips')).toBe(8);
    });

    it('refuses overlapping and malformed ranges, bad bodies and unknown actions, changing nothing', async () => {
      await call('POST', '/v2.1/os-floating-ips', w.p1);
      const create = (body: unknown) => () => call('POST', '/v2.1/os-floating-ips-bulk', w.admin, body);
      const remove =
        (body: unknown, action = 'delete') =>
        () =>
          call('PUT', `/v2.1/os-floating-ips-bulk/${action}`, w.admin, body);
      await expectRefusals(409, [
        [
          create({ floating_ips_bulk_create: { ip_range: '203.0.113.0/28' } }),
          'ip_range 203.0.113.0/28 overlaps existing floating IP 203.0.113.1 (pool nova)',
        ],
        [
          create({ floating_ips_bulk_create: { ip_range: '10.0.0.0/16' } }),
          'ip_range 10.0.0.0/16 overlaps fixed network 10.0.0.0/24 (private)',
        ],
        [remove({ ip_range: '203.0.113.0/29' }), /^floating IP 203\.0\.113\.1 is allocated to project p1; release it first/],
      ]);
      await expectRefusals(400, [
        [create({ floating_ips_bulk_create: { ip_range: '192.0.2.0/33' } }), /^ip_range/],
        [create({ floating_ips_bulk_create: { ip_range: '192.0.2.0/31' } }), /fewer than 4 addresses; give a single address instead$/],
        [create({ floating_ips_bulk_create: { pool: 'x' } }), 'floating_ips_bulk_create.ip_range is required'],
        [create({ floating_ips_bulk_create: { ip_range: '192.0.2.0/29', vlan: 5 } }), 'floating_ips_bulk_create has unknown field "vlan"'],
        [create({ ip_range: '192.0.2.0/29' }), /^the request body has unknown field "ip_range"|^floating_ips_bulk_create is required/],
        [create({ floating_ips_bulk_create: { ip_range: '192.0.2.0/29', interface: 'bad name' } }), /^interface/],
        [remove({}), 'ip_range is required'],
        [remove({ ip_range: 7 }), 'ip_range must be a string, got an integer'],
      ]);
      await expectRefusals(404, [
        [remove({ ip_range: '192.0.2.0/29' }), 'no floating IP in 192.0.2.0/29'],
        [remove({ ip_range: '203.0.113.0/29' }, 'purge'), /^Unknown action/],
      ]);
    });

    it('is for admins only: 403 naming the policy for members, changing nothing', async () => {
      const policy = "Policy doesn't allow os_compute_api:os-floating-ips-bulk to be performed.";
      await expectRefusals(403, [
        [() => call('GET', '/v2.1/os-floating-ips-bulk', w.p1), policy],
        [() => call('GET', '/v2.1/os-floating-ips-bulk/nethost', w.p1), policy],
        [() => call('POST', '/v2.1/os-floating-ips-bulk', w.p1, { floating_ips_bulk_create: { ip_range: '192.0.2.0/29' } }), policy],
        [() => call('PUT', '/v2.1/os-floating-ips-bulk/delete', w.p1, { ip_range: '203.0.113.0/29' }), policy],
      ]);
    });
  });

  it('needs a token on every floating IP route (401)', async () => {
    for (const path of ['/v2.1/os-floating-ip-pools', '/v2.1/os-floating-ips', '/v2.1/os-floating-ips/1', '/v2.1/os-floating-ips-bulk']) {
      expectFault(await w.api.call('GET', path), 401);
    }
  });
});
