import type Router from '@koa/router';
import { z } from 'zod';
import type { DefaultRule } from '../db/securityGroups.js';
import { booleanText } from '../fields.js';
import type { NetworkManager } from '../managers/manager.js';
import type { RuleRequest } from '../managers/securityGroupRules.js';
import type { SecurityGroupRuleView, SecurityGroupView } from '../managers/views.js';
import { projectOf, requireAdmin } from './auth.js';
import { requireJson } from './body.js';
import { actorOf } from './floatingIps.js';
import { findServer, type ServerAction } from './servers.js';
import type { ApiState } from './types.js';
import { parseBody } from './validation.js';

/** Nova's policy rule for the default rules, named in its 403. */
const DEFAULT_RULES_POLICY = 'os_compute_api:os-security-group-default-rules';

export interface SecurityGroupRouteDeps {
  manager: NetworkManager;
  maxBodyBytes: number;
}

/** Nova's rule view: a group source as `group`, a CIDR one as `ip_range`; the other `{}`. */
function ruleView({ rule, source }: SecurityGroupRuleView): Record<string, unknown> {
  return {
    id: rule.id,
    parent_group_id: rule.parentGroupId,
    ip_protocol: rule.protocol,
    from_port: rule.fromPort,
    to_port: rule.toPort,
    group: source ? { name: source.name, tenant_id: source.projectId } : {},
    ip_range: rule.cidr === null ? {} : { cidr: rule.cidr },
  };
}

function groupView({ group, rules }: SecurityGroupView): Record<string, unknown> {
  return { id: group.id, name: group.name, description: group.description, tenant_id: group.projectId, rules: rules.map(ruleView) };
}

function defaultRuleView(rule: DefaultRule): Record<string, unknown> {
  return { id: rule.id, ip_protocol: rule.protocol, from_port: rule.fromPort, to_port: rule.toPort, ip_range: { cidr: rule.cidr } };
}

/** Name and description are checked by the manager, with Nova's messages (a wrong type included). */
const GroupBody = z.strictObject({ security_group: z.strictObject({ name: z.unknown(), description: z.unknown() }) });

/** Ports and ids come as integers or strings of them (Nova took both); the manager checks their values. */
const portOrId = z.union([z.number(), z.string().max(64)]).nullish();

const RuleFields = {
  ip_protocol: z.string().max(16).nullish(),
  from_port: portOrId,
  to_port: portOrId,
  cidr: z.string().max(64).nullish(),
};

const RuleBody = z.strictObject({
  security_group_rule: z.strictObject({ parent_group_id: z.union([z.number(), z.string().max(64)]), group_id: portOrId, ...RuleFields }),
});

const DefaultRuleBody = z.strictObject({ security_group_default_rule: z.strictObject(RuleFields) });

/** A rule body's protocol, ports and CIDR, as the manager takes them. */
function ruleRequest(wanted: z.output<z.ZodObject<typeof RuleFields>>): RuleRequest {
  return { ipProtocol: wanted.ip_protocol, fromPort: wanted.from_port, toPort: wanted.to_port, cidr: wanted.cidr };
}

/** `?all_tenants` as Nova read it: present and not false. */
function allTenants(value: string | string[] | undefined): boolean {
  if (value === undefined) return false;
  const text = Array.isArray(value) ? (value.at(-1) ?? '') : value;
  return text === '' || booleanText(text) !== false;
}

/**
 * Nova's os-security-groups, os-security-group-rules, os-security-group-default-rules
 * (admins) and GET /servers/{id}/os-security-groups. Members see and change their
 * project's groups; admins any, and all projects' with `all_tenants`.
 */
export function securityGroupRoutes(router: Router<ApiState>, deps: SecurityGroupRouteDeps): void {
  const { manager } = deps;
  const groups = manager.securityGroups;

  router.get('/v2.1/os-security-groups', async (ctx) => {
    const views = await groups.list(actorOf(ctx), { projectId: projectOf(ctx), allTenants: allTenants(ctx.query.all_tenants) });
    ctx.body = { security_groups: views.map(groupView) };
  });

  router.post('/v2.1/os-security-groups', async (ctx) => {
    const { security_group: wanted } = parseBody(GroupBody, await requireJson(ctx, deps.maxBodyBytes));
    ctx.body = { security_group: groupView(await groups.create(projectOf(ctx), { name: wanted.name, description: wanted.description })) };
  });

  router.get('/v2.1/os-security-groups/:id', async (ctx) => {
    ctx.body = { security_group: groupView(await groups.get(ctx.params.id ?? '', actorOf(ctx))) };
  });

  router.put('/v2.1/os-security-groups/:id', async (ctx) => {
    const { security_group: wanted } = parseBody(GroupBody, await requireJson(ctx, deps.maxBodyBytes));
    ctx.body = { security_group: groupView(await groups.update(ctx.params.id ?? '', actorOf(ctx), wanted)) };
  });

  router.delete('/v2.1/os-security-groups/:id', async (ctx) => {
    await groups.delete(ctx.params.id ?? '', actorOf(ctx));
    ctx.status = 202;
    ctx.body = '';
  });

  router.post('/v2.1/os-security-group-rules', async (ctx) => {
    const { security_group_rule: wanted } = parseBody(RuleBody, await requireJson(ctx, deps.maxBodyBytes));
    const view = await groups.addRule(actorOf(ctx), {
      ...ruleRequest(wanted),
      parentGroupId: wanted.parent_group_id,
      groupId: wanted.group_id,
    });
    ctx.body = { security_group_rule: ruleView(view) };
  });

  router.delete('/v2.1/os-security-group-rules/:id', async (ctx) => {
    await groups.deleteRule(ctx.params.id ?? '', actorOf(ctx));
    ctx.status = 202;
    ctx.body = '';
  });

  router.get('/v2.1/servers/:id/os-security-groups', async (ctx) => {
    const server = await findServer(ctx, manager, ctx.params.id ?? '');
    ctx.body = { security_groups: (await groups.ofInstance(server.uuid)).map(groupView) };
  });

  router.get('/v2.1/os-security-group-default-rules', async (ctx) => {
    requireAdmin(ctx, DEFAULT_RULES_POLICY);
    ctx.body = { security_group_default_rules: (await groups.listDefaultRules()).map(defaultRuleView) };
  });

  router.post('/v2.1/os-security-group-default-rules', async (ctx) => {
    requireAdmin(ctx, DEFAULT_RULES_POLICY);
    const { security_group_default_rule: wanted } = parseBody(DefaultRuleBody, await requireJson(ctx, deps.maxBodyBytes));
    const created = await groups.createDefaultRule(ruleRequest(wanted));
    ctx.body = { security_group_default_rule: defaultRuleView(created) };
  });

  router.get('/v2.1/os-security-group-default-rules/:id', async (ctx) => {
    requireAdmin(ctx, DEFAULT_RULES_POLICY);
    ctx.body = { security_group_default_rule: defaultRuleView(await groups.getDefaultRule(ctx.params.id ?? '')) };
  });

  router.delete('/v2.1/os-security-group-default-rules/:id', async (ctx) => {
    requireAdmin(ctx, DEFAULT_RULES_POLICY);
    await groups.deleteDefaultRule(ctx.params.id ?? '');
    ctx.status = 204;
  });
}

/** Nova's actions take the group's name; OSC 6.0 sends its id there, which is taken too. */
const GroupActionBody = (action: 'addSecurityGroup' | 'removeSecurityGroup') =>
  z.strictObject({ [action]: z.strictObject({ name: z.unknown() }) });

export function securityGroupServerActions(manager: NetworkManager): Record<string, ServerAction> {
  return {
    addSecurityGroup: (body) => {
      const { name } = (parseBody(GroupActionBody('addSecurityGroup'), body) as { addSecurityGroup: { name: unknown } }).addSecurityGroup;
      return async (_ctx, server) => {
        await manager.securityGroups.addToInstance(server, name);
      };
    },
    removeSecurityGroup: (body) => {
      const { name } = (parseBody(GroupActionBody('removeSecurityGroup'), body) as { removeSecurityGroup: { name: unknown } })
        .removeSecurityGroup;
      return async (_ctx, server) => {
        await manager.securityGroups.removeFromInstance(server, name);
      };
    },
  };
}
