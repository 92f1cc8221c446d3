import { Invalid } from '../errors.js';
import { isDuplicateKey } from './errors.js';
import { type Queryable, toDate } from './rows.js';

/** A project's security group (nova's security_groups row). */
export interface SecurityGroup {
  id: number;
  name: string;
  description: string;
  projectId: string;
  userId: string | null;
  createdAt: Date | null;
}

export type Protocol = 'tcp' | 'udp' | 'icmp';

/**
 * One ingress rule of group `parentGroupId`: from `cidr`, or from every member of
 * `groupId`; `protocol` null means every protocol (a group source without one).
 * icmp keeps its type in fromPort and its code in toPort (-1: any), as nova.
 */
export interface SecurityGroupRule {
  id: number;
  parentGroupId: number;
  protocol: Protocol | null;
  fromPort: number | null;
  toPort: number | null;
  cidr: string | null;
  groupId: number | null;
}

export type NewRule = Omit<SecurityGroupRule, 'id'>;

/** A rule of `security_group_default_rules`: copied into each new `default` group. */
export interface DefaultRule {
  id: number;
  protocol: Protocol;
  fromPort: number;
  toPort: number;
  cidr: string;
}

type Row = Record<string, unknown>;

const number = (value: unknown): number | null => (value === null || value === undefined ? null : Number(value));

function groupFromRow(row: Row): SecurityGroup {
  return {
    id: Number(row.id),
    name: String(row.name),
    description: String(row.description),
    projectId: String(row.project_id),
    userId: (row.user_id as string | null) ?? null,
    createdAt: toDate(row.created_at),
  };
}

function ruleFromRow(row: Row): SecurityGroupRule {
  return {
    id: Number(row.id),
    parentGroupId: Number(row.parent_group_id),
    protocol: (row.protocol as Protocol | null) ?? null,
    fromPort: number(row.from_port),
    toPort: number(row.to_port),
    cidr: (row.cidr as string | null) ?? null,
    groupId: number(row.group_id),
  };
}

function defaultRuleFromRow(row: Row): DefaultRule {
  return {
    id: Number(row.id),
    protocol: row.protocol as Protocol,
    fromPort: Number(row.from_port),
    toPort: Number(row.to_port),
    cidr: String(row.cidr),
  };
}

const GROUP_NAME_KEY = /uniq_security_groups_project_name|security_groups\.project_id, security_groups\.name/;

export interface GroupFilter {
  projectId?: string;
  projectIds?: string[];
  ids?: number[];
  names?: string[];
}

export async function listGroups(q: Queryable, filter: GroupFilter = {}): Promise<SecurityGroup[]> {
  const query = q('security_groups').orderBy('id');
  if (filter.projectId !== undefined) query.where('project_id', filter.projectId);
  if (filter.projectIds) query.whereIn('project_id', filter.projectIds);
  if (filter.ids) query.whereIn('id', filter.ids);
  if (filter.names) query.whereIn('name', filter.names);
  return ((await query) as Row[]).map(groupFromRow);
}

export async function countGroups(q: Queryable, projectId: string): Promise<number> {
  const row = (await q('security_groups').where('project_id', projectId).count({ n: '*' }).first()) as { n: number | string };
  return Number(row.n);
}

/** A new group; a second group of the same name in the project is refused (nova: 400). */
export async function insertGroup(q: Queryable, group: Omit<SecurityGroup, 'id' | 'createdAt'>, now: Date): Promise<SecurityGroup> {
  try {
    const [id] = await q('security_groups').insert({
      name: group.name,
      description: group.description,
      project_id: group.projectId,
      user_id: group.userId,
      created_at: now,
      updated_at: now,
    });
    return { ...group, id: Number(id), createdAt: now };
  } catch (error) {
    if (isDuplicateKey(error) && GROUP_NAME_KEY.test(String((error as Error).message)))
      throw new Invalid(`Security group ${group.name} already exists for project ${group.projectId}.`);
    throw error;
  }
}

export async function updateGroup(
  q: Queryable,
  group: SecurityGroup,
  change: { name: string; description: string },
  now: Date,
): Promise<void> {
  try {
    await q('security_groups').where('id', group.id).update({ name: change.name, description: change.description, updated_at: now });
  } catch (error) {
    if (isDuplicateKey(error) && GROUP_NAME_KEY.test(String((error as Error).message)))
      throw new Invalid(`Security group ${change.name} already exists for project ${group.projectId}.`);
    throw error;
  }
}

/** Removes the group, its rules and the rules of other groups that name it as source. */
export async function deleteGroup(q: Queryable, id: number): Promise<void> {
  await q('security_group_rules').where('parent_group_id', id).orWhere('group_id', id).delete();
  await q('security_groups').where('id', id).delete();
}

export async function listRules(q: Queryable, filter: { groupIds?: number[]; ids?: number[] } = {}): Promise<SecurityGroupRule[]> {
  const query = q('security_group_rules').orderBy('id');
  if (filter.groupIds) query.whereIn('parent_group_id', filter.groupIds);
  if (filter.ids) query.whereIn('id', filter.ids);
  return ((await query) as Row[]).map(ruleFromRow);
}

export async function countRules(q: Queryable, groupId: number): Promise<number> {
  const row = (await q('security_group_rules').where('parent_group_id', groupId).count({ n: '*' }).first()) as { n: number | string };
  return Number(row.n);
}

export async function insertRules(q: Queryable, rules: NewRule[], now: Date): Promise<SecurityGroupRule[]> {
  const created: SecurityGroupRule[] = [];
  for (const rule of rules) {
    const [id] = await q('security_group_rules').insert({
      parent_group_id: rule.parentGroupId,
      protocol: rule.protocol,
      from_port: rule.fromPort,
      to_port: rule.toPort,
      cidr: rule.cidr,
      group_id: rule.groupId,
      created_at: now,
    });
    created.push({ ...rule, id: Number(id) });
  }
  return created;
}

export async function deleteRule(q: Queryable, id: number): Promise<void> {
  await q('security_group_rules').where('id', id).delete();
}

/** Membership: which instances belong to which groups. */
export interface Membership {
  groupId: number;
  instanceUuid: string;
}

export async function listMemberships(q: Queryable, filter: { groupIds?: number[]; instanceUuids?: string[] }): Promise<Membership[]> {
  const query = q('security_group_instance_association').select('security_group_id', 'instance_uuid').orderBy('id');
  if (filter.groupIds) query.whereIn('security_group_id', filter.groupIds);
  if (filter.instanceUuids) query.whereIn('instance_uuid', filter.instanceUuids);
  return ((await query) as Row[]).map((row) => ({ groupId: Number(row.security_group_id), instanceUuid: String(row.instance_uuid) }));
}

/** New memberships, in one INSERT (one already there breaks the unique key). */
export async function insertMemberships(q: Queryable, memberships: Membership[], now: Date): Promise<void> {
  if (memberships.length === 0) return;
  await q('security_group_instance_association').insert(
    memberships.map((entry) => ({ security_group_id: entry.groupId, instance_uuid: entry.instanceUuid, created_at: now })),
  );
}

export async function removeMembership(q: Queryable, membership: Membership): Promise<void> {
  await q('security_group_instance_association')
    .where({ security_group_id: membership.groupId, instance_uuid: membership.instanceUuid })
    .delete();
}

/** An instance's memberships end with its networking (deallocate). */
export async function removeInstances(q: Queryable, instanceUuids: string[]): Promise<void> {
  if (instanceUuids.length > 0) await q('security_group_instance_association').whereIn('instance_uuid', instanceUuids).delete();
}

export async function listDefaultRules(q: Queryable, filter: { ids?: number[] } = {}): Promise<DefaultRule[]> {
  const query = q('security_group_default_rules').orderBy('id');
  if (filter.ids) query.whereIn('id', filter.ids);
  return ((await query) as Row[]).map(defaultRuleFromRow);
}

export async function insertDefaultRule(q: Queryable, rule: Omit<DefaultRule, 'id'>, now: Date): Promise<DefaultRule> {
  const [id] = await q('security_group_default_rules').insert({
    protocol: rule.protocol,
    from_port: rule.fromPort,
    to_port: rule.toPort,
    cidr: rule.cidr,
    created_at: now,
  });
  return { ...rule, id: Number(id) };
}

export async function deleteDefaultRule(q: Queryable, id: number): Promise<void> {
  await q('security_group_default_rules').where('id', id).delete();
}
