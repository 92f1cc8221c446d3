import { noMorePositionals, stringOption } from '../args.js';
import { formatTable, shortTime } from '../table.js';
import type { Category } from './command.js';

export const hostCommands: Category = {
  list: {
    usage: 'novanet-manage host list [--host=HOST]',
    summary: "List the cluster's novanet-network services: role, state, heartbeat, last reconcile and its errors.",
    options: { host: { type: 'string', meta: 'HOST', help: 'only this host' } },
    async run(parsed, { manager }, io) {
      noMorePositionals(parsed, 0, 'host list');
      const name = stringOption(parsed, 'host');
      const rows = await manager.hosts.list(name === undefined ? {} : { name });
      if (rows.length === 0) {
        io.stdout(name === undefined ? 'No host found: no novanet-network service has started yet.\n' : `No host named ${name}.\n`);
        return;
      }
      io.stdout(
        formatTable(
          ['host', 'role', 'state', 'tunnel', 'version', 'heartbeat', 'last reconcile', 'errors'],
          rows.map((row) => [
            row.name,
            row.role,
            row.state,
            row.tunnelIp,
            row.version,
            shortTime(row.heartbeatAt),
            shortTime(row.lastReconcileAt),
            row.lastReconcileErrors.length,
          ]),
        ),
      );
      // The errors themselves, under the table: they are long, and an operator needs them whole.
      for (const row of rows) for (const error of row.lastReconcileErrors) io.stdout(`${row.name}: ${error}\n`);
    },
  },
};
