import type Router from '@koa/router';
import { z } from 'zod';
import { Conflict, Forbidden, NotFound } from '../errors.js';
import type { NetworkManager } from '../managers/manager.js';
import type { InstanceNetworkInfo } from '../managers/views.js';
import { callerOf, isAdmin } from './auth.js';
import { requireJson } from './body.js';
import type { ApiState } from './types.js';
import { optionalString, parseBody } from './validation.js';

const AllocateBody = z.strictObject({
  instance: z.strictObject({
    uuid: z.string().max(64),
    project_id: z.string().max(255),
    host: z.string().max(255),
    hostname: optionalString(),
    requested_networks: z
      .array(
        z.strictObject({
          uuid: z.string().max(64),
          fixed_ip: optionalString(64),
        }),
      )
      .max(64)
      .nullish(),
    // Names of the project's groups (Nova's boot request); none: `default`.
    security_groups: z.array(z.string().max(255)).max(64).nullish(),
  }),
});

export interface ComputeRouteDeps {
  manager: NetworkManager;
  maxBodyBytes: number;
}

/**
 * novanet's own endpoints for compute hosts (`os-novanet/instances`): allocate an
 * instance's networking when it boots, read it back, deallocate it. A member token
 * acts only on instances of its project; another project's instance is answered
 * 404 as if it did not exist, so instance uuids of other projects do not leak.
 */
export function computeRoutes(router: Router<ApiState>, deps: ComputeRouteDeps): void {
  const { manager } = deps;

  /** 404 unless the instance has networking and the caller may see it (admin, or its project's member). */
  function mustSee(ctx: Parameters<typeof callerOf>[0], uuid: string, project: string | null | undefined): void {
    const caller = callerOf(ctx);
    if (project === undefined || (caller.role !== 'admin' && project !== caller.projectId)) {
      throw new NotFound(`instance ${uuid} has no network allocated`);
    }
  }

  /** The instance's networking, if the caller may see it; 404 otherwise. */
  async function visible(ctx: Parameters<typeof callerOf>[0], uuid: string): Promise<InstanceNetworkInfo> {
    const info = await manager.allocation.networkInfo(uuid);
    mustSee(ctx, info.instance_uuid, info.network_info.length === 0 ? undefined : info.project_id);
    return info;
  }

  router.post('/v2.1/os-novanet/instances', async (ctx) => {
    const { instance } = parseBody(AllocateBody, await requireJson(ctx, deps.maxBodyBytes));
    const caller = callerOf(ctx);
    if (!isAdmin(ctx) && instance.project_id !== caller.projectId) {
      throw new Forbidden(
        `a member token of project ${caller.projectId} cannot allocate networking for project ${instance.project_id.slice(0, 64)}`,
      );
    }
    const info = await manager.allocation.allocate({
      instanceUuid: instance.uuid,
      projectId: instance.project_id,
      host: instance.host,
      hostname: instance.hostname,
      requestedNetworks: instance.requested_networks?.map((entry) => ({ networkUuid: entry.uuid, address: entry.fixed_ip })),
      securityGroups: instance.security_groups ?? undefined,
    });
    // Allocation is idempotent per instance: a repeat returns what exists, which
    // must not be another project's instance.
    if (info.project_id !== instance.project_id) {
      throw new Conflict(`instance ${info.instance_uuid} already has networking allocated for another project`);
    }
    ctx.body = info;
  });

  router.get('/v2.1/os-novanet/instances/:uuid', async (ctx) => {
    ctx.body = await manager.hosts.withActive(await visible(ctx, ctx.params.uuid ?? ''));
  });

  router.delete('/v2.1/os-novanet/instances/:uuid', async (ctx) => {
    // The ownership check is part of the deallocation: a member's call leaves another
    // project's instance untouched, and is then answered as if it did not exist.
    const uuid = ctx.params.uuid ?? '';
    const found = await manager.allocation.deallocate(uuid, isAdmin(ctx) ? {} : { onlyProject: callerOf(ctx).projectId });
    mustSee(ctx, uuid, found?.projectId);
    ctx.status = 204;
  });
}
