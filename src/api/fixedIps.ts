import type Router from '@koa/router';
import { z } from 'zod';
import type { NetworkManager } from '../managers/manager.js';
import { requireAdmin } from './auth.js';
import { requireJson } from './body.js';
import type { ApiState } from './types.js';
import { actionName, nullValue, parseBody } from './validation.js';

const POLICY = 'os_compute_api:os-fixed-ips';

export interface FixedIpRouteDeps {
  manager: NetworkManager;
  maxBodyBytes: number;
}

/** Nova's os-fixed-ips extension (admin only): show one address, reserve or unreserve it. */
export function fixedIpRoutes(router: Router<ApiState>, deps: FixedIpRouteDeps): void {
  const { manager } = deps;

  router.get('/v2.1/os-fixed-ips/:address', async (ctx) => {
    requireAdmin(ctx, POLICY);
    const fixed = await manager.fixedIps.get(ctx.params.address ?? '');
    ctx.body = {
      fixed_ip: { address: fixed.address, cidr: fixed.network, host: fixed.host, hostname: fixed.hostname, reserved: fixed.reserved },
    };
  });

  router.post('/v2.1/os-fixed-ips/:address/action', async (ctx) => {
    requireAdmin(ctx, POLICY);
    const body = await requireJson(ctx, deps.maxBodyBytes);
    const action = actionName(body, ['reserve', 'unreserve'] as const, 'os-fixed-ips');
    parseBody(z.strictObject({ [action]: nullValue }), body);
    const address = ctx.params.address ?? '';
    if (action === 'reserve') await manager.fixedIps.reserve(address);
    else await manager.fixedIps.unreserve(address);
    ctx.status = 202;
    ctx.body = '';
  });
}
