import { noMorePositionals, optionOrPositional, stringOption } from '../args.js';
import { formatTable } from '../table.js';
import type { Category } from './command.js';

const IP_RANGE = {
  ip_range: { type: 'string', meta: 'RANGE', help: 'a CIDR (network and broadcast skipped) or one IPv4 address' },
} as const;

/** nova-manage's `floating` category: pools of floating IPs, as operators manage them. */
export const floatingCommands: Category = {
  create: {
    usage: 'novanet-manage floating create --ip_range=RANGE [--pool=POOL] [--interface=IF] | floating create RANGE',
    summary: 'Create floating IPs in a pool.',
    options: {
      ...IP_RANGE,
      pool: { type: 'string', meta: 'POOL', help: 'pool name (default default_floating_pool)' },
      interface: { type: 'string', meta: 'IF', help: 'interface the addresses are bound to (default public_interface)' },
    },
    async run(parsed, { manager }, io) {
      const range = optionOrPositional(parsed, 'ip_range', 'RANGE', 'floating create');
      const created = await manager.floating.createRange(range, stringOption(parsed, 'pool'), stringOption(parsed, 'interface'));
      io.stdout(`created ${created.count} floating IP(s) in pool ${created.pool}\n`);
    },
  },
  list: {
    usage: 'novanet-manage floating list [--host=HOST]',
    summary: 'List floating IPs with their project, instance, pool and interface.',
    options: { host: { type: 'string', meta: 'HOST', help: 'only addresses bound on this host' } },
    async run(parsed, { manager }, io) {
      noMorePositionals(parsed, 0, 'floating list');
      const host = stringOption(parsed, 'host');
      const rows = await manager.floating.list(host === undefined ? {} : { host });
      if (rows.length === 0) {
        io.stdout('No floating IP addresses have been defined.\n');
        return;
      }
      io.stdout(
        formatTable(
          ['project_id', 'address', 'instance_uuid', 'pool', 'interface'],
          rows.map((row) => [row.projectId, row.address, row.instanceUuid, row.pool, row.interface]),
        ),
      );
    },
  },
  delete: {
    usage: 'novanet-manage floating delete --ip_range=RANGE | floating delete RANGE',
    summary: 'Delete floating IPs that no project holds.',
    options: IP_RANGE,
    async run(parsed, { manager }, io) {
      const count = await manager.floating.deleteRange(optionOrPositional(parsed, 'ip_range', 'RANGE', 'floating delete'));
      io.stdout(`deleted ${count} floating IP(s)\n`);
    },
  },
};
