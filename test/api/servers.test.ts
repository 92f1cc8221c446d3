/**
 * The minimal Nova /servers novanet serves from virtual interfaces, and the server
 * actions addFloatingIp / removeFloatingIp, on each backend: scoping, Nova's status
 * codes and fault bodies, the host layer told of every (dis)association, and every
 * refusal leaving the database as it was.
 */
import { describe, expect, it } from 'vitest';
import { expectFault, type Reply, uuidOf } from '../support/api.js';
import { BACKENDS } from '../support/databases.js';
import { snapshot } from '../support/dbState.js';
import { type FloatingWorld, floatingRow, useFloatingWorld } from '../support/floatingWorld.js';
import { useDatabase } from '../support/managers.js';

type View = Record<string, unknown>;

describe.each(BACKENDS)('/servers and the floating IP server actions on %s', (backend) => {
  const db = useDatabase(backend);
  let w!: FloatingWorld;
  const { call, rebuild } = useFloatingWorld(db, (world) => {
    w = world;
  });
  const action = (server: string, token: string, body: unknown) => call('POST', `/v2.1/servers/${server}/action`, token, body);
  const allocate = async (token: string) =>
    ((await call('POST', '/v2.1/os-floating-ips', token)).json as { floating_ip: { ip: string } }).floating_ip.ip;
  const macOf = async (instance: string) =>
    String(((await db().knex('virtual_interfaces').where({ instance_uuid: instance }).first()) as { address: string }).address);

  /** Runs the requests and checks each is refused with `status`, the database and host layer untouched. */
  async function expectRefusals(status: number, requests: [reply: () => Promise<Reply>, message: RegExp | string][]): Promise<void> {
    const before = await snapshot(db());
    for (const [request, message] of requests) expectFault(await request(), status, message);
    expect(await snapshot(db())).toEqual(before);
    expect(w.api.h.host.changes).toEqual([]);
  }

  describe('GET /servers', () => {
    it("lists the caller's project's instances by id and name (the VIF's hostname); an admin's lists all", async () => {
      const mine = await call('GET', '/v2.1/servers', w.p1);
      expect(mine.status).toBe(200);
      expect(mine.json).toEqual({
        servers: [
          { id: w.vm1, name: 'vm1' },
          { id: w.vm3, name: 'vm3' },
        ],
      });
      expect((await call('GET', '/v2.1/p2/servers', w.p2)).json).toEqual({ servers: [{ id: w.vm2, name: 'vm2' }] });
      const all = (await call('GET', '/v2/servers', w.admin)).json as { servers: View[] };
      expect(all.servers.map((server) => server.name)).toEqual(['vm1', 'vm2', 'vm3']);
    });

    it('names an instance allocated without a hostname by its uuid', async () => {
      await w.api.manager.allocation.allocate({ instanceUuid: uuidOf(9), projectId: 'p2', host: 'compute1' });
      expect((await call('GET', '/v2.1/servers', w.p2)).json).toEqual({
        servers: [
          { id: w.vm2, name: 'vm2' },
          { id: uuidOf(9), name: uuidOf(9) },
        ],
      });
    });
  });

  describe('GET /servers/{id}', () => {
    it("shows the server with Nova's addresses: fixed, then its floating IPs", async () => {
      const reply = await call('GET', `/v2.1/servers/${w.vm1}`, w.p1);
      expect(reply.status).toBe(200);
      const mac = await macOf(w.vm1);
      const fixed = { version: 4, addr: w.fixed.vm1, 'OS-EXT-IPS:type': 'fixed', 'OS-EXT-IPS-MAC:mac_addr': mac };
      expect(reply.json).toEqual({
        server: {
          id: w.vm1,
          name: 'vm1',
          tenant_id: 'p1',
          addresses: { private: [fixed] },
          metadata: {},
          security_groups: [{ name: 'default' }],
        },
      });
      const floating = await allocate(w.p1);
      await w.api.manager.floating.associate({ address: floating, instanceUuid: w.vm1, actor: { projectId: 'p1' } });
      const after = (await call('GET', `/v2.1/servers/${w.vm1.toUpperCase()}`, w.p1)).json as {
        server: { addresses: Record<string, View[]> };
      };
      expect(after.server.addresses).toEqual({
        private: [fixed, { version: 4, addr: floating, 'OS-EXT-IPS:type': 'floating', 'OS-EXT-IPS-MAC:mac_addr': mac }],
      });
      expect((await call('GET', `/v2.1/servers/${w.vm2}`, w.admin)).json).toMatchObject({ server: { id: w.vm2, tenant_id: 'p2' } });
    });

    it("answers 404 for unknown servers, names and other projects' servers", async () => {
      expectFault(await call('GET', `/v2.1/servers/${w.vm2}`, w.p1), 404, `Instance ${w.vm2} could not be found.`);
      expectFault(await call('GET', `/v2.1/servers/${uuidOf(77)}`, w.admin), 404, `Instance ${uuidOf(77)} could not be found.`);
      expectFault(await call('GET', '/v2.1/servers/vm1', w.p1), 404, 'Instance vm1 could not be found.');
    });
  });

  describe('addFloatingIp', () => {
    it("associates the address with the server's first fixed IP (202) and tells the host layer", async () => {
      const floating = await allocate(w.p1);
      const reply = await action(w.vm1, w.p1, { addFloatingIp: { address: floating } });
      expect(reply.status).toBe(202);
      expect(reply.text).toBe('');
      expect(await floatingRow(db(), floating)).toMatchObject({ projectId: 'p1', host: 'nethost' });
      expect(((await call('GET', `/v2.1/os-floating-ips/${floating}`, w.p1)).json as { floating_ip: View }).floating_ip).toMatchObject({
        fixed_ip: w.fixed.vm1,
        instance_id: w.vm1,
      });
      expect(w.api.h.host.changes).toEqual([{ kind: 'floating-updated', address: floating }]);
      // The same again changes nothing and tells nobody.
      w.api.h.host.clear();
      expect((await action(w.vm1, w.p1, { addFloatingIp: { address: floating, fixed_address: w.fixed.vm1 } })).status).toBe(202);
      expect(w.api.h.host.changes).toEqual([]);
    });

    it("lets an admin associate any project's address with that project's server", async () => {
      const floating = await allocate(w.p2);
      expect((await action(w.vm2, w.admin, { addFloatingIp: { address: floating, fixed_address: w.fixed.vm2 } })).status).toBe(202);
      expect((await floatingRow(db(), floating)).fixedIpId).not.toBeNull();
    });

    it("refuses addresses the project does not hold and other projects' servers (404), changing nothing", async () => {
      const theirs = await allocate(w.p2);
      const mine = await allocate(w.p1);
      await expectRefusals(404, [
        [() => action(w.vm1, w.p1, { addFloatingIp: { address: '203.0.113.6' } }), 'floating IP 203.0.113.6 not found for project p1'],
        [() => action(w.vm1, w.p1, { addFloatingIp: { address: theirs } }), `floating IP ${theirs} not found for project p1`],
        [() => action(w.vm1, w.p1, { addFloatingIp: { address: '192.0.2.1' } }), 'floating IP 192.0.2.1 not found for project p1'],
        [() => action(w.vm2, w.p1, { addFloatingIp: { address: mine } }), `Instance ${w.vm2} could not be found.`],
        [() => action(uuidOf(55), w.admin, { addFloatingIp: { address: mine } }), `Instance ${uuidOf(55)} could not be found.`],
        [
          () => action(w.vm1, w.admin, { addFloatingIp: { address: '203.0.113.6' } }),
          /^floating IP 203\.0\.113\.6 is not allocated to any project/,
        ],
      ]);
    });

    it('refuses an address associated elsewhere and a fixed address of another server (400), changing nothing', async () => {
      const floating = await allocate(w.p1);
      await action(w.vm1, w.p1, { addFloatingIp: { address: floating } });
      w.api.h.host.clear();
      await expectRefusals(400, [
        [
          () => action(w.vm3, w.p1, { addFloatingIp: { address: floating } }),
          new RegExp(`^floating IP ${floating.replace(/\./g, '\\.')} is already associated with fixed IP`),
        ],
        [
          () => action(w.vm1, w.p1, { addFloatingIp: { address: floating, fixed_address: w.fixed.vm3 } }),
          `fixed IP ${w.fixed.vm3} does not belong to instance ${w.vm1}`,
        ],
      ]);
    });

    it("refuses to give one project's address to another project's server, even for an admin (409)", async () => {
      const floating = await allocate(w.p1);
      await expectRefusals(409, [
        [() => action(w.vm2, w.admin, { addFloatingIp: { address: floating } }), /belongs to project p1, instance .* to project p2$/],
      ]);
    });
  });

  describe('removeFloatingIp', () => {
    it('disassociates the address from the server (202) and tells the host layer', async () => {
      const floating = await allocate(w.p1);
      await action(w.vm1, w.p1, { addFloatingIp: { address: floating } });
      w.api.h.host.clear();
      const reply = await action(w.vm1, w.p1, { removeFloatingIp: { address: floating } });
      expect(reply.status).toBe(202);
      expect(await floatingRow(db(), floating)).toMatchObject({ projectId: 'p1', fixedIpId: null, host: null });
      expect(w.api.h.host.changes).toEqual([{ kind: 'floating-updated', address: floating }]);
    });

    it('refuses an address not associated with that server (409), unknown or foreign ones (404), changing nothing', async () => {
      const floating = await allocate(w.p1);
      const idle = await allocate(w.p1);
      const theirs = await allocate(w.p2);
      await action(w.vm1, w.p1, { addFloatingIp: { address: floating } });
      w.api.h.host.clear();
      await expectRefusals(409, [
        [
          () => action(w.vm3, w.p1, { removeFloatingIp: { address: floating } }),
          `Floating IP ${floating} is not associated with instance ${w.vm3}.`,
        ],
        [
          () => action(w.vm1, w.p1, { removeFloatingIp: { address: idle } }),
          `Floating IP ${idle} is not associated with instance ${w.vm1}.`,
        ],
      ]);
      await expectRefusals(404, [
        [() => action(w.vm1, w.p1, { removeFloatingIp: { address: theirs } }), `floating IP ${theirs} not found for project p1`],
        [() => action(w.vm2, w.p1, { removeFloatingIp: { address: floating } }), `Instance ${w.vm2} could not be found.`],
      ]);
    });

    it('refuses an auto-assigned address (403), changing nothing', async () => {
      await rebuild({ config: { auto_assign_floating_ip: 'true' } });
      await expectRefusals(403, [
        [() => action(w.vm1, w.p1, { removeFloatingIp: { address: '203.0.113.1' } }), /^floating IP 203\.0\.113\.1 was auto-assigned/],
      ]);
    });
  });

  it('refuses malformed action bodies (400) before looking the server up, changing nothing', async () => {
    const floating = await allocate(w.p1);
    await expectRefusals(400, [
      [
        () => action(uuidOf(55), w.p1, { reboot: { type: 'HARD' } }),
        /^There is no such action: "reboot"; server actions are addFloatingIp, removeFloatingIp, addSecurityGroup, removeSecurityGroup$/,
      ],
      [
        () => action(w.vm1, w.p1, { addFloatingIp: { address: floating }, removeFloatingIp: { address: floating } }),
        /exactly one action, got 2 keys/,
      ],
      [() => action(w.vm1, w.p1, { addFloatingIp: {} }), 'addFloatingIp.address is required'],
      [() => action(uuidOf(55), w.p1, { addFloatingIp: { address: 7 } }), 'addFloatingIp.address must be a string, got an integer'],
      [() => action(w.vm1, w.p1, { addFloatingIp: { address: floating, pool: 'nova' } }), 'addFloatingIp has unknown field "pool"'],
      [() => action(w.vm1, w.p1, { addFloatingIp: { address: 'not-an-ip' } }), /^address/],
      [
        () => action(w.vm1, w.p1, { removeFloatingIp: { address: floating, fixed_address: w.fixed.vm1 } }),
        'removeFloatingIp has unknown field "fixed_address"',
      ],
      [() => action(w.vm1, w.p1, { removeFloatingIp: null }), 'removeFloatingIp must be an object, got null'],
      [() => action(w.vm1, w.p1, 'addFloatingIp'), /must be an object naming one action, got a string/],
    ]);
  });
});
