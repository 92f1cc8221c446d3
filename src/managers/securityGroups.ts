import { WrittenMeanwhile } from '../db/errors.js';
import { findQuota } from '../db/quotas.js';
import { withRetry } from '../db/retry.js';
import type { Queryable } from '../db/rows.js';
import type { DefaultRule, SecurityGroup, SecurityGroupRule } from '../db/securityGroups.js';
import * as groups from '../db/securityGroups.js';
import * as vifs from '../db/virtualInterfaces.js';
import { Conflict, Invalid, NotFound, QuotaExceeded } from '../errors.js';
import { projectIdField, quote } from '../fields.js';
import type { ManagerContext } from './context.js';
import type { Actor } from './requests.js';
import { buildRule, groupId, groupText, idValue, isDuplicateRule, type RuleRequest, ruleCidr, rulePorts } from './securityGroupRules.js';
import type { SecurityGroupMembers, SecurityGroupRuleView, SecurityGroupView } from './views.js';

/** The group every project has, created on first use; neither renamed nor deleted. */
export const DEFAULT_GROUP = 'default';

/**
 * Security groups: Nova's groups, rules, membership of instances and the default rules
 * copied into each project's new `default` group. Another project's group is not
 * found, never forbidden (as for floating IPs), so group ids of others do not leak.
 */
export class SecurityGroups {
  constructor(private readonly context: ManagerContext) {}

  /** The caller's project's groups (its `default` made if missing), or every project's for an admin asking for all. */
  async list(actor: Actor, options: { projectId: string; allTenants?: boolean }): Promise<SecurityGroupView[]> {
    const project = projectIdField(options.projectId);
    await this.ensureDefault(project);
    const all = actor === 'admin' && options.allTenants === true;
    return this.views(this.context.db.knex, await groups.listGroups(this.context.db.knex, all ? {} : { projectId: project }));
  }

  async get(idText: string, actor: Actor): Promise<SecurityGroupView> {
    const q = this.context.db.knex;
    const [view] = await this.views(q, [await this.owned(q, idText, actor)]);
    return view!;
  }

  async create(projectId: string, request: { name: unknown; description: unknown; userId?: string }): Promise<SecurityGroupView> {
    const project = projectIdField(projectId);
    const name = groupText(request.name, 'name');
    const description = groupText(request.description, 'description');
    const created = await withRetry(() =>
      this.context.transaction(async (trx) => {
        await this.checkGroupQuota(trx, project);
        return groups.insertGroup(trx, { name, description, projectId: project, userId: request.userId ?? null }, this.context.now());
      }),
    );
    return { group: created, rules: [] };
  }

  async update(idText: string, actor: Actor, request: { name: unknown; description: unknown }): Promise<SecurityGroupView> {
    const name = groupText(request.name, 'name');
    const description = groupText(request.description, 'description');
    return withRetry(() =>
      this.context.transaction(async (trx) => {
        const group = await this.owned(trx, idText, actor);
        if (group.name === DEFAULT_GROUP && name !== DEFAULT_GROUP) throw new Invalid(`Unable to update system group '${DEFAULT_GROUP}'`);
        await groups.updateGroup(trx, group, { name, description }, this.context.now());
        const [view] = await this.views(trx, [{ ...group, name, description }]);
        return view!;
      }),
    );
  }

  async delete(idText: string, actor: Actor): Promise<void> {
    await withRetry(() =>
      this.context.transaction(async (trx) => {
        const group = await this.owned(trx, idText, actor);
        if (group.name === DEFAULT_GROUP) throw new Invalid(`Unable to delete system group '${DEFAULT_GROUP}'`);
        if ((await groups.listMemberships(trx, { groupIds: [group.id] })).length > 0) throw new Invalid('Security group is still in use');
        await groups.deleteGroup(trx, group.id);
      }),
    );
  }

  /**
   * For operators: groups (one project's, or all) with their members and the hosts where
   * each member's ports are (where its rules are to be enforced).
   */
  async withMembers(filter: { projectId?: string; id?: string } = {}): Promise<SecurityGroupMembers[]> {
    const q = this.context.db.knex;
    const found = await groups.listGroups(q, {
      ...(filter.projectId === undefined ? {} : { projectId: projectIdField(filter.projectId) }),
      ...(filter.id === undefined ? {} : { ids: [groupId(filter.id)] }),
    });
    if (filter.id !== undefined && found.length === 0) throw new NotFound(`Security group ${groupId(filter.id)} not found.`);
    const memberships = found.length === 0 ? [] : await groups.listMemberships(q, { groupIds: found.map((group) => group.id) });
    const instances = [...new Set(memberships.map((entry) => entry.instanceUuid))];
    const ports = instances.length === 0 ? [] : await vifs.listVirtualInterfaces(q, { instanceUuids: instances });
    return (await this.views(q, found)).map((view) => {
      const members = memberships.filter((entry) => entry.groupId === view.group.id).map((entry) => entry.instanceUuid);
      const on = (uuid: string) => [
        ...new Set(ports.filter((vif) => vif.instanceUuid === uuid).flatMap((vif) => (vif.host ? [vif.host] : []))),
      ];
      return { ...view, members: members.map((uuid) => ({ instanceUuid: uuid, hosts: on(uuid) })) };
    });
  }

  // ---- rules ----------------------------------------------------------------

  async addRule(actor: Actor, request: RuleRequest & { parentGroupId: unknown }): Promise<SecurityGroupRuleView> {
    const parentId = groupId(request.parentGroupId);
    const sourceId = request.groupId === undefined || request.groupId === null ? null : groupId(request.groupId);
    return withRetry(() =>
      this.context.transaction(async (trx) => {
        const parent = await this.owned(trx, String(parentId), actor);
        const source = sourceId === null ? undefined : await this.owned(trx, String(sourceId), actor);
        const rule = buildRule(parent.id, { ...request, groupId: sourceId });
        const existing = await groups.listRules(trx, { groupIds: [parent.id] });
        if (isDuplicateRule(rule, existing)) throw new Invalid(`This rule already exists in group ${parent.id}`);
        const limit = (await findQuota(trx, parent.projectId, 'security_group_rules')) ?? this.context.config.quota_security_group_rules;
        if (limit >= 0 && existing.length + 1 > limit) throw new QuotaExceeded('Quota exceeded, too many security group rules.');
        const [created] = await groups.insertRules(trx, [rule], this.context.now());
        return ruleView(created!, source);
      }),
    );
  }

  async deleteRule(idText: string, actor: Actor): Promise<void> {
    const id = groupId(idText, 'Security group rule id');
    await withRetry(() =>
      this.context.transaction(async (trx) => {
        const [rule] = await groups.listRules(trx, { ids: [id] });
        const notFound = new NotFound(`Rule (${id}) not found`);
        if (!rule) throw notFound;
        const [parent] = await groups.listGroups(trx, { ids: [rule.parentGroupId] });
        if (!parent || !mayUse(parent, actor)) throw notFound;
        await groups.deleteRule(trx, id);
      }),
    );
  }

  // ---- instances ------------------------------------------------------------

  /** The groups of an instance the caller may see (the API found the server first). */
  async ofInstance(instanceUuid: string): Promise<SecurityGroupView[]> {
    const q = this.context.db.knex;
    const ids = (await groups.listMemberships(q, { instanceUuids: [instanceUuid] })).map((entry) => entry.groupId);
    return ids.length === 0 ? [] : this.views(q, await groups.listGroups(q, { ids }));
  }

  /** Nova's addSecurityGroup: by name, or by id (OSC 6.0 sends the id), in the instance's project. */
  async addToInstance(instance: { uuid: string; projectId: string | null }, nameOrId: unknown): Promise<void> {
    await withRetry(() =>
      this.context.transaction(async (trx) => {
        const group = await this.named(trx, instance, nameOrId);
        const held = await groups.listMemberships(trx, { instanceUuids: [instance.uuid], groupIds: [group.id] });
        if (held.length > 0) throw new Invalid(`Security group ${group.name} is already associated with the instance ${instance.uuid}`);
        await groups.insertMemberships(trx, [{ groupId: group.id, instanceUuid: instance.uuid }], this.context.now());
      }),
    );
  }

  async removeFromInstance(instance: { uuid: string; projectId: string | null }, nameOrId: unknown): Promise<void> {
    await withRetry(() =>
      this.context.transaction(async (trx) => {
        const group = await this.named(trx, instance, nameOrId);
        const held = await groups.listMemberships(trx, { instanceUuids: [instance.uuid], groupIds: [group.id] });
        if (held.length === 0) throw new Invalid(`Security group ${group.name} not associated with the instance ${instance.uuid}`);
        await groups.removeMembership(trx, { groupId: group.id, instanceUuid: instance.uuid });
      }),
    );
  }

  // ---- default rules (admins) -------------------------------------------------

  listDefaultRules(): Promise<DefaultRule[]> {
    return groups.listDefaultRules(this.context.db.knex);
  }

  async getDefaultRule(idText: string): Promise<DefaultRule> {
    const id = groupId(idText, 'Security group default rule id');
    const [rule] = await groups.listDefaultRules(this.context.db.knex, { ids: [id] });
    if (!rule) throw new NotFound(`Default rule (${id}) not found.`);
    return rule;
  }

  async createDefaultRule(request: RuleRequest): Promise<DefaultRule> {
    const cidr = ruleCidr(request.cidr);
    const ports = rulePorts({ ...request, groupId: null });
    if (!ports) throw new Invalid('Not enough parameters to build a valid rule.');
    const rule = { protocol: ports.protocol!, fromPort: ports.fromPort!, toPort: ports.toPort!, cidr };
    return withRetry(() =>
      this.context.transaction(async (trx) => {
        const existing = await groups.listDefaultRules(trx);
        if (existing.some((other) => sameDefaultRule(other, rule))) throw new Conflict('This default rule already exists.');
        return groups.insertDefaultRule(trx, rule, this.context.now());
      }),
    );
  }

  async deleteDefaultRule(idText: string): Promise<void> {
    const rule = await this.getDefaultRule(idText);
    await groups.deleteDefaultRule(this.context.db.knex, rule.id);
  }

  // ---- helpers ----------------------------------------------------------------

  /** The project's `default` group, made with the default rules if it does not exist yet. */
  private async ensureDefault(projectId: string): Promise<void> {
    const q = this.context.db.knex;
    if ((await groups.listGroups(q, { projectId, names: [DEFAULT_GROUP] })).length > 0) return;
    await withRetry(() => this.context.transaction((trx) => defaultGroup(trx, projectId, this.context.now())));
  }

  private async checkGroupQuota(trx: Queryable, projectId: string): Promise<void> {
    const limit = (await findQuota(trx, projectId, 'security_groups')) ?? this.context.config.quota_security_groups;
    if (limit >= 0 && (await groups.countGroups(trx, projectId)) + 1 > limit)
      throw new QuotaExceeded('Quota exceeded, too many security groups.');
  }

  /** The group by id, if the caller may see it; else Nova's SecurityGroupNotFound. */
  private async owned(q: Queryable, idText: string, actor: Actor): Promise<SecurityGroup> {
    const id = groupId(idText);
    const [group] = await groups.listGroups(q, { ids: [id] });
    if (!group || !mayUse(group, actor)) throw new NotFound(`Security group ${id} not found.`);
    return group;
  }

  /** A group of the instance's project by name, or by id. */
  private async named(q: Queryable, instance: { projectId: string | null }, nameOrId: unknown): Promise<SecurityGroup> {
    const name = groupText(typeof nameOrId === 'number' ? String(nameOrId) : nameOrId, 'name');
    const project = instance.projectId ?? '';
    const [byName] = await groups.listGroups(q, { projectId: project, names: [name] });
    if (byName) return byName;
    const id = idValue(name);
    if (id !== undefined) {
      const [byId] = await groups.listGroups(q, { ids: [id], projectId: project });
      if (byId) return byId;
    }
    throw new NotFound(`Security group ${name} not found for project ${project}.`);
  }

  /** Each group with its rules, a group source named with its project (two queries). */
  private async views(q: Queryable, found: SecurityGroup[]): Promise<SecurityGroupView[]> {
    if (found.length === 0) return [];
    const rules = await groups.listRules(q, { groupIds: found.map((group) => group.id) });
    const sourceIds = [...new Set(rules.flatMap((rule) => (rule.groupId === null ? [] : [rule.groupId])))];
    const sources = new Map(
      (sourceIds.length === 0 ? [] : await groups.listGroups(q, { ids: sourceIds })).map((group) => [group.id, group]),
    );
    return found.map((group) => ({
      group,
      rules: rules
        .filter((rule) => rule.parentGroupId === group.id)
        .map((rule) => ruleView(rule, rule.groupId === null ? undefined : sources.get(rule.groupId))),
    }));
  }
}

function mayUse(group: SecurityGroup, actor: Actor): boolean {
  return actor === 'admin' || actor.projectId === group.projectId;
}

function ruleView(rule: SecurityGroupRule, source: SecurityGroup | undefined): SecurityGroupRuleView {
  return { rule, source: source ? { name: source.name, projectId: source.projectId } : null };
}

function sameDefaultRule(rule: DefaultRule, other: Omit<DefaultRule, 'id'>): boolean {
  return rule.protocol === other.protocol && rule.fromPort === other.fromPort && rule.toPort === other.toPort && rule.cidr === other.cidr;
}

/** An allocation's groups: existing ones by id, and whether the project's `default` is still to be made. */
export interface AllocationGroups {
  ids: number[];
  makeDefault: boolean;
  names: string[];
}

/**
 * The project's `default` group in this transaction, made with the default rules if
 * missing. Two first uses racing: the second finds the first's at its retry.
 */
export async function defaultGroup(trx: Queryable, projectId: string, now: Date): Promise<SecurityGroup> {
  const [found] = await groups.listGroups(trx, { projectId, names: [DEFAULT_GROUP] });
  if (found) return found;
  let group: SecurityGroup;
  try {
    group = await groups.insertGroup(trx, { name: DEFAULT_GROUP, description: DEFAULT_GROUP, projectId, userId: null }, now);
  } catch (error) {
    // Made meanwhile by a concurrent first use: withRetry runs the transaction again, which finds it.
    if (error instanceof Invalid) throw new WrittenMeanwhile(`project ${projectId}'s default security group`);
    throw error;
  }
  const rules = (await groups.listDefaultRules(trx)).map((rule) => ({
    parentGroupId: group.id,
    protocol: rule.protocol,
    fromPort: rule.fromPort,
    toPort: rule.toPort,
    cidr: rule.cidr,
    groupId: null,
  }));
  await groups.insertRules(trx, rules, now);
  return group;
}

/** An allocation's group names, checked before anything is read: none given means `default`. */
export function allocationGroupNames(names: string[] | undefined): string[] {
  const wanted = [...new Set(names ?? [DEFAULT_GROUP])];
  for (const name of wanted) groupText(name, 'name');
  return wanted;
}

/**
 * The allocation's groups among those its project has of these names (read with the
 * batch); an unknown name is Nova's 400 at boot. A missing `default` is made by the
 * allocation's own transaction.
 */
export function allocationGroups(wanted: string[], found: SecurityGroup[]): AllocationGroups {
  const missing = wanted.filter((name) => !found.some((group) => group.name === name));
  const unknown = missing.find((name) => name !== DEFAULT_GROUP);
  if (unknown !== undefined) throw new Invalid(`Unable to find security_group with name or id ${quote(unknown)}`);
  return { ids: found.map((group) => group.id), makeDefault: missing.length > 0, names: wanted };
}
