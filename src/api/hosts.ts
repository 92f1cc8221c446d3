import type Router from '@koa/router';
import type { HostView } from '../managers/hosts.js';
import type { NetworkManager } from '../managers/manager.js';
import { requireAdmin } from './auth.js';
import type { ApiState } from './types.js';

const iso = (date: Date | null) => (date === null ? null : date.toISOString());

function hostView(host: HostView) {
  return {
    host: host.name,
    role: host.role,
    state: host.state,
    tunnel_ip: host.tunnelIp,
    version: host.version,
    started_at: iso(host.startedAt),
    heartbeat_at: iso(host.heartbeatAt),
    last_reconcile_at: iso(host.lastReconcileAt),
    last_reconcile_errors: host.lastReconcileErrors,
  };
}

/** `GET /os-novanet/hosts`: the cluster's services, as `novanet-manage host list` shows them (admin only, as Nova's os-services). */
export function hostRoutes(router: Router<ApiState>, deps: { manager: NetworkManager }): void {
  router.get('/v2.1/os-novanet/hosts', async (ctx) => {
    requireAdmin(ctx, 'os_compute_api:os-novanet:hosts');
    ctx.body = { hosts: (await deps.manager.hosts.list()).map(hostView) };
  });
}
