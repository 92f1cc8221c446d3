import { isDuplicateKey } from '../db/errors.js';
import * as fixedIps from '../db/fixedIps.js';
import type { Network } from '../db/networks.js';
import * as networks from '../db/networks.js';
import type { Queryable } from '../db/rows.js';
import { Conflict, Invalid, NetworkHasProject, NetworkInUse } from '../errors.js';
import { hostnameField, projectIdField, uuidField } from '../fields.js';
import { cidrText, parseCidr } from '../ipam/cidr.js';
import type { ManagerContext } from './context.js';
import { refuseFloatingOverlap } from './floatingRange.js';
import { planNetworks } from './plan.js';
import type { CreateNetworksRequest, ModifyNetworkRequest, NetworkSelector } from './requests.js';

/** Networks: nova-manage's network verbs and Nova's os-networks, in every mode. */
export class Networks {
  constructor(private readonly context: ManagerContext) {}

  async create(request: CreateNetworksRequest): Promise<Network[]> {
    const { context } = this;
    const now = context.now();
    const created = await context.transaction(
      async (trx) => {
        const existing = await networks.listNetworks(trx);
        const count = request.numNetworks ?? context.config.num_networks;
        const fields = await context.policy.modeFields(context, request, count, trx);
        const planned = planNetworks(
          request,
          { config: context.config, existing, rules: context.policy.createRules(context.config), newUuid: context.newUuid },
          fields,
        );
        for (const plan of planned) if (plan.network.cidr !== null) await refuseFloatingOverlap(trx, plan.network.cidr);
        const total = planned.reduce((sum, plan) => sum + plan.size, 0);
        let written = 0;
        const result: Network[] = [];
        for (const plan of planned) {
          const id = await networks.insertNetwork(trx, plan.network, now);
          const before = written;
          await fixedIps.insertFixedIps(trx, id, plan.addresses(), now, (inserted) => {
            written = before + inserted;
            request.onProgress?.(written, total);
          });
          result.push({ ...plan.network, id, createdAt: now, updatedAt: now });
        }
        return result;
      },
      (error) => {
        // Two creates raced for the same space: the database's unique keys decided.
        if (isDuplicateKey(error))
          return new Conflict(
            `another network took part of this range or VLAN meanwhile; nothing was created (${(error as Error).message.slice(0, 120)})`,
          );
        return undefined;
      },
    );
    await context.notify(created.map((network) => ({ kind: 'network-updated', networkId: network.id })));
    return created;
  }

  /** `projectId`: owned by that project; `visibleTo`: owned by it or by none (what a project may see). */
  list(filter: { projectId?: string; visibleTo?: string } = {}): Promise<Network[]> {
    return networks.listNetworks(this.context.db.knex, {
      ...(filter.projectId === undefined ? {} : { projectId: filter.projectId }),
      ...(filter.visibleTo === undefined ? {} : { visibleTo: filter.visibleTo }),
    });
  }

  get(selector: NetworkSelector): Promise<Network> {
    return networks.getNetwork(this.context.db.knex, normalise(selector));
  }

  async delete(selector: NetworkSelector): Promise<Network> {
    const { context } = this;
    const network = await context.transaction(async (trx) => {
      const found = await networks.getNetwork(trx, normalise(selector));
      if (found.projectId !== null) {
        throw new NetworkHasProject(
          `network ${found.cidr ?? found.uuid} is associated with project ${found.projectId}; disassociate it first (network modify --disassociate-project or project scrub)`,
        );
      }
      await assertUnused(trx, found);
      await fixedIps.deleteFixedIps(trx, found.id);
      await networks.softDeleteNetwork(trx, found.id, context.now());
      return found;
    });
    await context.notify([{ kind: 'network-deleted', network }]);
    return network;
  }

  async modify(selector: NetworkSelector, request: ModifyNetworkRequest): Promise<Network> {
    const { context } = this;
    if (request.project !== undefined && request.disassociateProject) {
      throw new Invalid('--project and --disassociate-project contradict each other');
    }
    if (request.host !== undefined && request.disassociateHost) {
      throw new Invalid('--host and --disassociate-host contradict each other');
    }
    const project = request.project === undefined ? undefined : projectIdField(request.project, 'project');
    const host = request.host === undefined ? undefined : hostnameField(request.host, 'host');
    if (project === undefined && host === undefined && !request.disassociateProject && !request.disassociateHost) {
      throw new Invalid('nothing to modify: give --project, --host, --disassociate-project or --disassociate-host');
    }
    const updated = await context.transaction(async (trx) => {
      const network = await networks.getNetwork(trx, normalise(selector));
      const patch: Partial<Network> = {};
      if (project !== undefined && network.projectId !== project) {
        if (network.projectId !== null) {
          throw new NetworkHasProject(`network ${network.cidr} already belongs to project ${network.projectId}; disassociate it first`);
        }
        patch.projectId = project;
      }
      if (request.disassociateProject && network.projectId !== null) {
        await assertUnused(trx, network);
        patch.projectId = null;
      }
      if (host !== undefined) patch.host = host;
      if (request.disassociateHost) patch.host = null;
      await networks.updateNetwork(trx, network.id, patch, context.now());
      return { ...network, ...patch };
    });
    await context.notify([{ kind: 'network-updated', networkId: updated.id }]);
    return updated;
  }

  /** Takes the project's networks away from it (and from their host, so the host tears them down), as nova's network_disassociate. */
  async scrub(projectId: string): Promise<Network[]> {
    const { context } = this;
    projectIdField(projectId, 'project');
    const scrubbed = await context.transaction(async (trx) => {
      const owned = await networks.listNetworks(trx, { projectId });
      for (const network of owned) await assertUnused(trx, network);
      for (const network of owned) await networks.updateNetwork(trx, network.id, { projectId: null, host: null }, context.now());
      return owned;
    });
    await context.notify(scrubbed.map((network) => ({ kind: 'network-updated', networkId: network.id })));
    return scrubbed;
  }
}

/** A network an instance still holds an address of stays as it is. */
async function assertUnused(q: Queryable, network: Network): Promise<void> {
  const usage = await fixedIps.networkUsage(q, network.id);
  if (usage.associated > 0) {
    throw new NetworkInUse(
      `network ${network.cidr ?? network.uuid} still has ${usage.associated} fixed IP(s) held by instances (${usage.allocated} allocated); deallocate them first`,
    );
  }
}

function normalise(selector: NetworkSelector): NetworkSelector {
  if ('uuid' in selector) return { uuid: uuidField(selector.uuid, 'uuid') };
  // Canonical, never trimmed: ' 10.0.0.0/24' names no network.
  if ('cidr' in selector) return { cidr: cidrText(parseCidr(selector.cidr, 'fixed_range', 4)) };
  return selector;
}
