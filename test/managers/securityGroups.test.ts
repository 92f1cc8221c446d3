/**
 * Security groups in the manager (issue 19): Nova's checks and messages, quotas,
 * ownership, the default group and its default rules, membership through allocation
 * and the server actions, on both database backends.
 */
import { describe, expect, it } from 'vitest';
import { Conflict, Invalid, NotFound, QuotaExceeded } from '../../src/errors.js';
import type { NetworkManager } from '../../src/managers/manager.js';
import { BACKENDS } from '../support/databases.js';
import { snapshot } from '../support/dbState.js';
import { harness, instance, useDatabase } from '../support/managers.js';

const P1 = { projectId: 'p1' } as const;

describe.each(BACKENDS)('security groups on %s', (backend) => {
  const db = useDatabase(backend);
  const groupsOf = (manager: NetworkManager) => manager.securityGroups;

  /** The call is refused with `kind` and `message`, and the database is as before. */
  async function refused(manager: NetworkManager, call: () => Promise<unknown>, kind: new (m: string) => Error, message: string | RegExp) {
    const before = await snapshot(db());
    const error = await call().then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    expect(error).toBeInstanceOf(kind);
    expect((error as Error).message).toMatch(message);
    expect(await snapshot(db())).toEqual(before);
    return manager;
  }

  it("creates, lists (the project's default made on first look), shows, renames and deletes a group", async () => {
    const { manager } = harness(db(), 'flatdhcp');
    const groups = groupsOf(manager);
    expect((await groups.list(P1, { projectId: 'p1' })).map((view) => view.group.name)).toEqual(['default']);
    const web = await groups.create('p1', { name: 'web', description: 'web servers' });
    expect(web.group).toMatchObject({ name: 'web', description: 'web servers', projectId: 'p1' });
    expect((await groups.get(String(web.group.id), P1)).group.name).toBe('web');
    const renamed = await groups.update(String(web.group.id), P1, { name: 'www', description: 'the web' });
    expect(renamed.group).toMatchObject({ id: web.group.id, name: 'www', description: 'the web' });
    // Another project sees neither the group nor its id; an admin sees all with all_tenants.
    await groups.create('p2', { name: 'db', description: 'db' });
    await refused(
      manager,
      () => groups.get(String(web.group.id), { projectId: 'p2' }),
      NotFound,
      `Security group ${web.group.id} not found.`,
    );
    expect((await groups.list('admin', { projectId: 'p1', allTenants: true })).map((view) => view.group.name).sort()).toEqual([
      'db',
      'default',
      'www',
    ]);
    expect((await groups.list('admin', { projectId: 'p1' })).map((view) => view.group.name)).toEqual(['default', 'www']);
    await groups.delete(String(web.group.id), P1);
    expect((await groups.list(P1, { projectId: 'p1' })).map((view) => view.group.name)).toEqual(['default']);
  });

  it("refuses with Nova's messages, changing nothing", async () => {
    const { manager } = harness(db(), 'flatdhcp');
    const groups = groupsOf(manager);
    const [def] = await groups.list(P1, { projectId: 'p1' });
    const web = await groups.create('p1', { name: 'web', description: 'web' });
    const id = String(web.group.id);
    await refused(
      manager,
      () => groups.create('p1', { name: 'web', description: 'again' }),
      Invalid,
      'Security group web already exists for project p1.',
    );
    await refused(manager, () => groups.create('p1', { name: '  ', description: 'x' }), Invalid, 'Security group name cannot be empty.');
    await refused(
      manager,
      () => groups.create('p1', { name: 'x'.repeat(256), description: 'x' }),
      Invalid,
      /should not be greater than 255/,
    );
    await refused(
      manager,
      () => groups.create('p1', { name: 7, description: 'x' }),
      Invalid,
      'Security group name is not a string or unicode',
    );
    await refused(manager, () => groups.create('p1', { name: 'a\nb', description: 'x' }), Invalid, /control characters/);
    await refused(manager, () => groups.get('web', P1), Invalid, 'Security group id should be integer');
    await refused(manager, () => groups.get('999999', P1), NotFound, 'Security group 999999 not found.');
    const defaultId = String(def!.group.id);
    await refused(
      manager,
      () => groups.update(defaultId, P1, { name: 'other', description: 'x' }),
      Invalid,
      "Unable to update system group 'default'",
    );
    await refused(manager, () => groups.delete(defaultId, P1), Invalid, "Unable to delete system group 'default'");
    await refused(
      manager,
      () => groups.update(id, P1, { name: 'default', description: 'x' }),
      Invalid,
      'Security group default already exists for project p1.',
    );
    const rule = (request: Record<string, unknown>) => groups.addRule(P1, { parentGroupId: id, ...request });
    await refused(manager, () => rule({ ipProtocol: 'tcp', fromPort: 0, toPort: 0 }), Invalid, 'Valid TCP ports should be between 1-65535');
    await refused(
      manager,
      () => rule({ ipProtocol: 'udp', fromPort: 10, toPort: 9 }),
      Invalid,
      'Former value cannot be greater than the later',
    );
    await refused(
      manager,
      () => rule({ ipProtocol: 'tcp', fromPort: 1, toPort: 65536 }),
      Invalid,
      'Valid TCP ports should be between 1-65535',
    );
    await refused(manager, () => rule({ ipProtocol: 'icmp', fromPort: 256, toPort: 0 }), Invalid, 'For ICMP, the type:code must be valid');
    await refused(
      manager,
      () => rule({ ipProtocol: 'icmp', fromPort: 'x', toPort: 0 }),
      Invalid,
      'Type and Code must be integers for ICMP protocol type',
    );
    await refused(manager, () => rule({ ipProtocol: 'tcp', fromPort: '2x', toPort: 3 }), Invalid, 'To and From ports must be integers');
    await refused(manager, () => rule({ ipProtocol: 'gre', fromPort: 1, toPort: 2 }), Invalid, 'Invalid IP protocol "gre".');
    await refused(manager, () => rule({ cidr: '10.0.0.0/8' }), Invalid, 'Not enough parameters to build a valid rule.');
    await refused(
      manager,
      () => rule({ ipProtocol: 'tcp', fromPort: 22, toPort: 22, cidr: '10.0.0.300/8' }),
      Invalid,
      'Invalid CIDR "10.0.0.300/8"',
    );
    await refused(
      manager,
      () => rule({ ipProtocol: 'tcp', fromPort: 22, toPort: 22, groupId: '999999' }),
      NotFound,
      'Security group 999999 not found.',
    );
    await refused(
      manager,
      () => groups.addRule(P1, { parentGroupId: 'x', ipProtocol: 'tcp', fromPort: 1, toPort: 1 }),
      Invalid,
      'Security group id should be integer',
    );
    await refused(manager, () => groups.deleteRule('424242', P1), NotFound, 'Rule (424242) not found');
    await rule({ ipProtocol: 'tcp', fromPort: 22, toPort: 22 });
    await refused(
      manager,
      () => rule({ ipProtocol: 'TCP', fromPort: '22', toPort: 22, cidr: '0.0.0.0/0' }),
      Invalid,
      `This rule already exists in group ${id}`,
    );
  });

  it('builds rules as Nova did: default CIDR, a group source opening all ports or every protocol', async () => {
    const { manager } = harness(db(), 'flatdhcp');
    const groups = groupsOf(manager);
    const web = await groups.create('p1', { name: 'web', description: 'web' });
    const app = await groups.create('p1', { name: 'app', description: 'app' });
    const parentGroupId = String(app.group.id);
    const cidr = await groups.addRule(P1, { parentGroupId, ipProtocol: 'tcp', fromPort: 5432, toPort: 5432 });
    expect(cidr).toMatchObject({ rule: { protocol: 'tcp', fromPort: 5432, toPort: 5432, cidr: '0.0.0.0/0', groupId: null }, source: null });
    // OSC sends 0.0.0.0/0 alongside a remote group: the group is the source.
    const fromWeb = await groups.addRule(P1, { parentGroupId, ipProtocol: 'udp', groupId: web.group.id, cidr: '0.0.0.0/0' });
    expect(fromWeb).toMatchObject({
      rule: { protocol: 'udp', fromPort: 1, toPort: 65535, cidr: null },
      source: { name: 'web', projectId: 'p1' },
    });
    const anyFromWeb = await groups.addRule(P1, { parentGroupId, groupId: String(web.group.id) });
    expect(anyFromWeb.rule).toMatchObject({ protocol: null, fromPort: null, toPort: null, groupId: web.group.id });
    const icmp = await groups.addRule(P1, { parentGroupId, ipProtocol: 'icmp', fromPort: -1, toPort: -1, cidr: '2001:db8::/32' });
    expect(icmp.rule).toMatchObject({ protocol: 'icmp', fromPort: -1, toPort: -1, cidr: '2001:db8::/32' });
    expect((await groups.get(parentGroupId, P1)).rules).toHaveLength(4);
    await groups.deleteRule(String(icmp.rule.id), P1);
    await refused(
      manager,
      () => groups.deleteRule(String(cidr.rule.id), { projectId: 'p2' }),
      NotFound,
      `Rule (${cidr.rule.id}) not found`,
    );
    // A group named as a source goes, and so do the rules naming it.
    await groups.delete(String(web.group.id), P1);
    expect((await groups.get(parentGroupId, P1)).rules.map((view) => view.rule.id)).toEqual([cidr.rule.id]);
  });

  it('counts quotas: groups per project, rules per group (403 over)', async () => {
    const { manager } = harness(db(), 'flatdhcp', { config: { quota_security_groups: '2', quota_security_group_rules: '1' } });
    const groups = groupsOf(manager);
    await groups.list(P1, { projectId: 'p1' });
    const one = await groups.create('p1', { name: 'one', description: 'x' });
    await refused(
      manager,
      () => groups.create('p1', { name: 'two', description: 'x' }),
      QuotaExceeded,
      'Quota exceeded, too many security groups.',
    );
    await groups.addRule(P1, { parentGroupId: one.group.id, ipProtocol: 'tcp', fromPort: 1, toPort: 1 });
    await refused(
      manager,
      () => groups.addRule(P1, { parentGroupId: one.group.id, ipProtocol: 'tcp', fromPort: 2, toPort: 2 }),
      QuotaExceeded,
      'Quota exceeded, too many security group rules.',
    );
  });

  it("copies the default rules into each project's new default group", async () => {
    const { manager } = harness(db(), 'flatdhcp');
    const groups = groupsOf(manager);
    await groups.createDefaultRule({ ipProtocol: 'tcp', fromPort: 22, toPort: 22 });
    await refused(
      manager,
      () => groups.createDefaultRule({ ipProtocol: 'tcp', fromPort: 22, toPort: 22, cidr: '0.0.0.0/0' }),
      Conflict,
      'This default rule already exists.',
    );
    await refused(manager, () => groups.createDefaultRule({ cidr: '10.0.0.0/8' }), Invalid, 'Not enough parameters to build a valid rule.');
    const [def] = await groups.list(P1, { projectId: 'p1' });
    expect(def!.rules.map((view) => view.rule)).toMatchObject([{ protocol: 'tcp', fromPort: 22, toPort: 22, cidr: '0.0.0.0/0' }]);
    const [rule] = await groups.listDefaultRules();
    await groups.deleteDefaultRule(String(rule!.id));
    await refused(manager, () => groups.getDefaultRule(String(rule!.id)), NotFound, `Default rule (${rule!.id}) not found.`);
  });

  it('makes an allocated instance a member of its groups (default when none), by name or id in server actions, until it is freed', async () => {
    const { manager } = harness(db(), 'flatdhcp');
    const groups = groupsOf(manager);
    await manager.networks.create({ label: 'private', fixedRangeV4: '10.0.0.0/24' });
    const web = await groups.create('p1', { name: 'web', description: 'web' });
    const first = await manager.allocation.allocate({ instanceUuid: instance(1), projectId: 'p1', host: 'compute1' });
    expect(first.security_groups).toEqual([{ name: 'default' }]);
    const second = await manager.allocation.allocate({
      instanceUuid: instance(2),
      projectId: 'p1',
      host: 'compute1',
      securityGroups: ['web', 'default'],
    });
    expect(second.security_groups.map((entry) => entry.name).sort()).toEqual(['default', 'web']);
    expect((await manager.allocation.networkInfo(instance(2))).security_groups.map((entry) => entry.name).sort()).toEqual([
      'default',
      'web',
    ]);
    await refused(
      manager,
      () => manager.allocation.allocate({ instanceUuid: instance(3), projectId: 'p1', host: 'compute1', securityGroups: ['nope'] }),
      Invalid,
      'Unable to find security_group with name or id "nope"',
    );
    const server = { uuid: instance(1), projectId: 'p1' };
    // OSC 6.0 sends the id where Nova expects the name.
    await groups.addToInstance(server, String(web.group.id));
    expect((await groups.ofInstance(instance(1))).map((view) => view.group.name).sort()).toEqual(['default', 'web']);
    await refused(
      manager,
      () => groups.addToInstance(server, 'web'),
      Invalid,
      `Security group web is already associated with the instance ${instance(1)}`,
    );
    await refused(manager, () => groups.delete(String(web.group.id), P1), Invalid, 'Security group is still in use');
    await groups.removeFromInstance(server, 'web');
    await refused(
      manager,
      () => groups.removeFromInstance(server, 'web'),
      Invalid,
      `Security group web not associated with the instance ${instance(1)}`,
    );
    await refused(
      manager,
      () => groups.addToInstance({ uuid: instance(1), projectId: 'p2' }, 'web'),
      NotFound,
      'Security group web not found for project p2.',
    );
    await manager.allocation.deallocate(instance(2));
    expect(await groups.ofInstance(instance(2))).toEqual([]);
    await groups.delete(String(web.group.id), P1);
  });

  it("makes one default group per project when the projects' first allocations race through four services", async () => {
    const services = Array.from({ length: 4 }, () => harness(db(), 'flatdhcp'));
    // A network per service: no fixed IP row that one service's transaction locks holds another back.
    const nets = await services[0]!.manager.networks.create({ label: 'n', fixedRangeV4: '10.0.0.0/22', numNetworks: 4, networkSize: 256 });
    // Three rounds of five new projects: the race is not won the same way every time.
    for (let round = 0; round < 3; round++) {
      const projects = Array.from({ length: 5 }, (_, index) => `r${round}p${index}`);
      const results = await Promise.all(
        Array.from({ length: 40 }, (_, n) =>
          services[n % 4]!.manager.allocation.allocate({
            instanceUuid: instance(round * 40 + n + 1),
            projectId: projects[n % 5]!,
            host: 'compute1',
            requestedNetworks: [{ networkUuid: nets[n % 4]!.uuid }],
          }),
        ),
      );
      for (const result of results) expect(result.security_groups).toEqual([{ name: 'default' }]);
      for (const project of projects) expect((await db().knex('security_groups').where({ project_id: project })).length, project).toBe(1);
    }
    expect((await db().knex('security_group_instance_association')).length).toBe(120);
  });
});
