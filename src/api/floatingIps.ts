import type Router from '@koa/router';
import { z } from 'zod';
import { FloatingIpNotFound, NotFound } from '../errors.js';
import type { NetworkManager } from '../managers/manager.js';
import type { FloatingActor } from '../managers/requests.js';
import type { FloatingIpListing } from '../managers/views.js';
import { callerOf, isAdmin, projectOf, requireAdmin } from './auth.js';
import { readJson, requireJson } from './body.js';
import type { ApiContext, ServerAction } from './servers.js';
import type { ApiState } from './types.js';
import { optionalString, parseBody } from './validation.js';

/** Nova's policy rule for the bulk API, named in its 403 so operators recognise it. */
const BULK_POLICY = 'os_compute_api:os-floating-ips-bulk';

export interface FloatingIpRouteDeps {
  manager: NetworkManager;
  maxBodyBytes: number;
}

/** Nova's floating IP view: `id` is the database id, `instance_id` the instance's uuid. */
function floatingIpView(entry: FloatingIpListing): Record<string, unknown> {
  return { id: entry.id, ip: entry.address, pool: entry.pool, fixed_ip: entry.fixedAddress, instance_id: entry.instanceUuid };
}

/** One row of os-floating-ips-bulk (Nova's floating_ip_info). */
function bulkView(entry: FloatingIpListing): Record<string, unknown> {
  return {
    address: entry.address,
    fixed_ip: entry.fixedAddress,
    instance_uuid: entry.instanceUuid,
    interface: entry.interface,
    pool: entry.pool,
    project_id: entry.projectId,
  };
}

/** Who acts on an address: an admin on any, a member on its project's only. */
export function actorOf(ctx: ApiContext): FloatingActor {
  return isAdmin(ctx) ? 'admin' : { projectId: callerOf(ctx).projectId };
}

/** Nova's allocate body: `{"pool": name}`; no body, `null` or `{"pool": null}` mean default_floating_pool. */
const AllocateBody = z.strictObject({ pool: optionalString(255) }).nullish();

const BulkCreateBody = z.strictObject({
  floating_ips_bulk_create: z.strictObject({
    ip_range: z.string().min(1).max(64),
    pool: optionalString(255),
    interface: optionalString(15),
  }),
});

const BulkDeleteBody = z.strictObject({ ip_range: z.string().min(1).max(64) });

/**
 * Nova's os-floating-ip-pools, os-floating-ips and (admin only) os-floating-ips-bulk.
 * A floating IP is named by its id or by its address (OSC passes either); one the
 * caller may not see is answered 404, so other projects' addresses do not leak.
 */
export function floatingIpRoutes(router: Router<ApiState>, deps: FloatingIpRouteDeps): void {
  const { manager } = deps;

  router.get('/v2.1/os-floating-ip-pools', async (ctx) => {
    ctx.body = { floating_ip_pools: (await manager.floating.listPools()).map((name) => ({ name })) };
  });

  // The project's own addresses, for admins too (as Nova); os-floating-ips-bulk lists all.
  router.get('/v2.1/os-floating-ips', async (ctx) => {
    ctx.body = { floating_ips: (await manager.floating.list({ projectId: projectOf(ctx) })).map(floatingIpView) };
  });

  router.get('/v2.1/os-floating-ips/:id', async (ctx) => {
    ctx.body = { floating_ip: floatingIpView(await manager.floating.get(ctx.params.id ?? '', actorOf(ctx))) };
  });

  router.post('/v2.1/os-floating-ips', async (ctx) => {
    const body = parseBody(AllocateBody, await readJson(ctx, deps.maxBodyBytes));
    ctx.body = { floating_ip: floatingIpView(await manager.floating.allocate(projectOf(ctx), body?.pool)) };
  });

  // Like Nova: an associated address is disassociated first, then released.
  router.delete('/v2.1/os-floating-ips/:id', async (ctx) => {
    const actor = actorOf(ctx);
    const found = await manager.floating.get(ctx.params.id ?? '', actor);
    await manager.floating.release(found.address, actor, { disassociate: true });
    ctx.status = 202;
    ctx.body = '';
  });

  router.get('/v2.1/os-floating-ips-bulk', async (ctx) => {
    requireAdmin(ctx, BULK_POLICY);
    ctx.body = { floating_ip_info: (await manager.floating.list()).map(bulkView) };
  });

  router.get('/v2.1/os-floating-ips-bulk/:host', async (ctx) => {
    requireAdmin(ctx, BULK_POLICY);
    const host = ctx.params.host ?? '';
    const found = await manager.floating.list({ host });
    // Nova's FloatingIpNotFoundForHost: a host that binds nothing is 404, not an empty list.
    if (found.length === 0) throw new FloatingIpNotFound(`Floating IP not found for host ${host.slice(0, 64)}.`);
    ctx.body = { floating_ip_info: found.map(bulkView) };
  });

  router.post('/v2.1/os-floating-ips-bulk', async (ctx) => {
    requireAdmin(ctx, BULK_POLICY);
    const { floating_ips_bulk_create: wanted } = parseBody(BulkCreateBody, await requireJson(ctx, deps.maxBodyBytes));
    const created = await manager.floating.createRange(wanted.ip_range, wanted.pool, wanted.interface);
    ctx.body = { floating_ips_bulk_create: { ip_range: wanted.ip_range, pool: created.pool, interface: created.interface } };
  });

  // Nova's bulk delete is `PUT /os-floating-ips-bulk/delete`; any other id is an unknown action.
  router.put('/v2.1/os-floating-ips-bulk/:action', async (ctx) => {
    requireAdmin(ctx, BULK_POLICY);
    if (ctx.params.action !== 'delete') throw new NotFound('Unknown action: the only bulk update is PUT os-floating-ips-bulk/delete');
    const { ip_range: range } = parseBody(BulkDeleteBody, await requireJson(ctx, deps.maxBodyBytes));
    await manager.floating.deleteRange(range);
    ctx.body = { floating_ips_bulk_delete: range };
  });
}

const AddFloatingIpBody = z.strictObject({
  addFloatingIp: z.strictObject({ address: z.string().max(64), fixed_address: optionalString(64) }),
});

const RemoveFloatingIpBody = z.strictObject({
  removeFloatingIp: z.strictObject({ address: z.string().max(64) }),
});

/**
 * Nova's floating-IP server actions. addFloatingIp associates with the given fixed
 * address or the server's first; removeFloatingIp refuses (409) an address that is
 * not associated with this server.
 */
export function floatingIpServerActions(manager: NetworkManager): Record<string, ServerAction> {
  return {
    addFloatingIp: (body) => {
      const { addFloatingIp: wanted } = parseBody(AddFloatingIpBody, body);
      return async (ctx, server) => {
        await manager.floating.associate({
          address: wanted.address,
          instanceUuid: server.uuid,
          fixedAddress: wanted.fixed_address,
          actor: actorOf(ctx),
        });
      };
    },
    removeFloatingIp: (body) => {
      const { removeFloatingIp: wanted } = parseBody(RemoveFloatingIpBody, body);
      return async (ctx, server) => {
        await manager.floating.disassociate(wanted.address, actorOf(ctx), { instanceUuid: server.uuid });
      };
    },
  };
}
