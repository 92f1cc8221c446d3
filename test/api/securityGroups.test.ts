/**
 * Nova's security group API (issue 19) in its shapes and codes: group and rule views,
 * 200 on create, 202 on delete, the rename OSC 6.0 cannot send, a server's groups,
 * all_tenants for admins, the default rules (204 on delete), and Nova's faults.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Api, expectFault, startApi, uuidOf } from '../support/api.js';
import { BACKENDS } from '../support/databases.js';
import { snapshot } from '../support/dbState.js';
import { useDatabase } from '../support/managers.js';

describe.each(BACKENDS)('security group API on %s', (backend) => {
  const db = useDatabase(backend);
  let api: Api;
  let member: string;
  let admin: string;

  beforeEach(async () => {
    api = await startApi(db());
    member = await api.token('p1');
    admin = await api.token('ops', 'admin');
    await api.manager.networks.create({ label: 'private', fixedRangeV4: '10.0.0.0/24' });
  });

  afterEach(async () => {
    await api.close();
  });

  const call = (method: string, path: string, body?: unknown, token = member) =>
    api.call(method, `/v2.1${path}`, { token, ...(body === undefined ? {} : { body }) });

  it("creates (200), renames (PUT), shows with rules in Nova's view, and deletes (202)", async () => {
    const created = await call('POST', '/os-security-groups', { security_group: { name: 'web', description: 'web servers' } });
    expect(created.status, created.text).toBe(200);
    const group = (created.json as { security_group: { id: number } }).security_group;
    expect(group).toEqual({ id: group.id, name: 'web', description: 'web servers', tenant_id: 'p1', rules: [] });
    const rule = await call('POST', '/os-security-group-rules', {
      security_group_rule: { parent_group_id: String(group.id), ip_protocol: 'tcp', from_port: '80', to_port: 80, cidr: '192.0.2.0/24' },
    });
    expect(rule.status, rule.text).toBe(200);
    const ruleView = (rule.json as { security_group_rule: { id: number } }).security_group_rule;
    expect(ruleView).toEqual({
      id: ruleView.id,
      parent_group_id: group.id,
      ip_protocol: 'tcp',
      from_port: 80,
      to_port: 80,
      group: {},
      ip_range: { cidr: '192.0.2.0/24' },
    });
    const renamed = await call('PUT', `/os-security-groups/${group.id}`, { security_group: { name: 'www', description: 'the web' } });
    expect(renamed.status, renamed.text).toBe(200);
    expect((renamed.json as { security_group: unknown }).security_group).toMatchObject({
      name: 'www',
      description: 'the web',
      rules: [ruleView],
    });
    const deleted = await call('DELETE', `/os-security-group-rules/${ruleView.id}`);
    expect([deleted.status, deleted.text]).toEqual([202, '']);
    const gone = await call('DELETE', `/os-security-groups/${group.id}`);
    expect([gone.status, gone.text]).toEqual([202, '']);
    expectFault(await call('GET', `/os-security-groups/${group.id}`), 404, `Security group ${group.id} not found.`);
  });

  it("answers a server's groups, and the groups of all projects to an admin asking for all_tenants", async () => {
    await api.manager.allocation.allocate({ instanceUuid: uuidOf(1), projectId: 'p1', host: 'compute1' });
    await call('POST', '/os-security-groups', { security_group: { name: 'mine', description: 'x' } }, await api.token('p2'));
    const groups = await call('GET', `/servers/${uuidOf(1)}/os-security-groups`);
    expect(groups.status, groups.text).toBe(200);
    expect((groups.json as { security_groups: { name: string }[] }).security_groups.map((group) => group.name)).toEqual(['default']);
    expectFault(await call('GET', `/servers/${uuidOf(1)}/os-security-groups`, undefined, await api.token('p2')), 404);
    const names = async (path: string) =>
      ((await call('GET', path, undefined, admin)).json as { security_groups: { name: string; tenant_id: string }[] }).security_groups.map(
        (group) => `${group.tenant_id}/${group.name}`,
      );
    expect(await names('/os-security-groups')).toEqual(['ops/default']);
    expect((await names('/os-security-groups?all_tenants=1')).sort()).toEqual(['ops/default', 'p1/default', 'p2/mine']);
    expect(await names('/os-security-groups?all_tenants=0')).toEqual(['ops/default']);
  });

  it('keeps default rules for admins: 200 on create, 204 on delete, copied into new default groups', async () => {
    const created = await call(
      'POST',
      '/os-security-group-default-rules',
      { security_group_default_rule: { ip_protocol: 'icmp', from_port: -1, to_port: -1 } },
      admin,
    );
    expect(created.status, created.text).toBe(200);
    const rule = (created.json as { security_group_default_rule: { id: number } }).security_group_default_rule;
    expect(rule).toEqual({ id: rule.id, ip_protocol: 'icmp', from_port: -1, to_port: -1, ip_range: { cidr: '0.0.0.0/0' } });
    const listed = await call('GET', '/os-security-groups');
    expect((listed.json as { security_groups: { rules: unknown[] }[] }).security_groups[0]!.rules).toMatchObject([{ ip_protocol: 'icmp' }]);
    const deleted = await call('DELETE', `/os-security-group-default-rules/${rule.id}`, undefined, admin);
    expect(deleted.status).toBe(204);
    expectFault(
      await call('GET', `/os-security-group-default-rules/${rule.id}`, undefined, admin),
      404,
      `Default rule (${rule.id}) not found.`,
    );
  });

  it("refuses in Nova's fault shape, changing nothing", async () => {
    const before = await snapshot(db());
    expectFault(await call('GET', '/os-security-groups/web'), 400, 'Security group id should be integer');
    expectFault(
      await call('POST', '/os-security-groups', { security_group: { name: '', description: 'x' } }),
      400,
      'Security group name cannot be empty.',
    );
    expectFault(
      await call('POST', '/os-security-groups', { security_group: { name: 'x' } }),
      400,
      'security_group.description is required',
    );
    expectFault(
      await call('POST', '/os-security-group-rules', {
        security_group_rule: { parent_group_id: 99, ip_protocol: 'tcp', from_port: 1, to_port: 2 },
      }),
      404,
      'Security group 99 not found.',
    );
    expectFault(await call('POST', `/servers/${uuidOf(9)}/action`, { addSecurityGroup: { name: 'web' } }), 404);
    expectFault(
      await call('POST', '/os-security-group-default-rules', { security_group_default_rule: { ip_protocol: 'tcp' } }, admin),
      400,
      'Not enough parameters to build a valid rule.',
    );
    expect(await snapshot(db())).toEqual(before);
  });
});
