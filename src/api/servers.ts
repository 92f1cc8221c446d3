import type Router from '@koa/router';
import type { ParameterizedContext } from 'koa';
import { NotFound } from '../errors.js';
import { isUuid } from '../fields.js';
import type { NetworkManager } from '../managers/manager.js';
import type { InstanceListing } from '../managers/views.js';
import { isAdmin, projectOf } from './auth.js';
import { requireJson } from './body.js';
import type { ApiState } from './types.js';
import { actionName } from './validation.js';

export type ApiContext = ParameterizedContext<ApiState>;

/**
 * One `POST /servers/{id}/action` action. It checks its body first (a bad body is 400
 * before any lookup, as in Nova) and returns what to do with the server once found.
 */
export type ServerAction = (body: unknown) => (ctx: ApiContext, server: InstanceListing) => Promise<void>;

export interface ServerRouteDeps {
  manager: NetworkManager;
  maxBodyBytes: number;
  /** By Nova's action name (`addFloatingIp`, ...); composed by the app. */
  actions: Record<string, ServerAction>;
}

/**
 * The server the URL names, if the caller may see it: members see their project's
 * instances, admins all. Anything else is Nova's InstanceNotFound (404), so instance
 * uuids of other projects do not leak.
 */
export async function findServer(ctx: ApiContext, manager: NetworkManager, id: string): Promise<InstanceListing> {
  const notFound = new NotFound(`Instance ${id.slice(0, 64)} could not be found.`);
  if (!isUuid(id)) throw notFound;
  const [found] = await manager.allocation.listInstances({ instanceUuid: id, ...(isAdmin(ctx) ? {} : { projectId: projectOf(ctx) }) });
  if (!found) throw notFound;
  return found;
}

/** Nova's server name; an instance allocated without a hostname goes by its uuid. */
function nameOf(instance: InstanceListing): string {
  return instance.hostname ?? instance.uuid;
}

/** Nova's `addresses`: per network label, each address with its type and the VIF's MAC. */
function addressesView(instance: InstanceListing): Record<string, Record<string, unknown>[]> {
  const byNetwork: Record<string, Record<string, unknown>[]> = {};
  for (const entry of instance.addresses) {
    (byNetwork[entry.networkLabel] ??= []).push({
      version: entry.version,
      addr: entry.address,
      'OS-EXT-IPS:type': entry.type,
      'OS-EXT-IPS-MAC:mac_addr': entry.mac,
    });
  }
  return byNetwork;
}

/**
 * A minimal Nova `/servers`, served from virtual interfaces: novanet owns no servers,
 * but clients look one up (by id, then by name in the list) before a server action
 * such as addFloatingIp. Only what the network side knows is shown.
 */
export function serverRoutes(router: Router<ApiState>, deps: ServerRouteDeps): void {
  const { manager } = deps;
  const names = Object.keys(deps.actions);

  router.get('/v2.1/servers', async (ctx) => {
    const instances = await manager.allocation.listInstances(isAdmin(ctx) ? {} : { projectId: projectOf(ctx) });
    ctx.body = { servers: instances.map((instance) => ({ id: instance.uuid, name: nameOf(instance) })) };
  });

  router.get('/v2.1/servers/:id', async (ctx) => {
    const instance = await findServer(ctx, manager, ctx.params.id ?? '');
    ctx.body = {
      // metadata: Nova's view always has it (empty here), and `openstack server show` reads it.
      server: {
        id: instance.uuid,
        name: nameOf(instance),
        tenant_id: instance.projectId,
        addresses: addressesView(instance),
        metadata: {},
        security_groups: (await manager.securityGroups.ofInstance(instance.uuid)).map((view) => ({ name: view.group.name })),
      },
    };
  });

  router.post('/v2.1/servers/:id/action', async (ctx) => {
    const body = await requireJson(ctx, deps.maxBodyBytes);
    const act = deps.actions[actionName(body, names, 'server')]!(body);
    await act(ctx, await findServer(ctx, manager, ctx.params.id ?? ''));
    ctx.status = 202;
    ctx.body = '';
  });
}
