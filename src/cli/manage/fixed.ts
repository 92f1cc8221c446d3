import { noMorePositionals, optionOrPositional, stringOption } from '../args.js';
import { formatTable } from '../table.js';
import type { Category } from './command.js';

const ADDRESS = { address: { type: 'string', meta: 'IP', help: 'the fixed IP' } } as const;

export const fixedCommands: Category = {
  list: {
    usage: 'novanet-manage fixed list [--host=HOST]',
    summary: 'List fixed IPs with the instance hostname and host holding them.',
    options: { host: { type: 'string', meta: 'HOST', help: 'only addresses of instances on this host' } },
    async run(parsed, { manager }, io) {
      noMorePositionals(parsed, 0, 'fixed list');
      const host = stringOption(parsed, 'host');
      const rows = await manager.fixedIps.list(host === undefined ? {} : { host });
      if (rows.length === 0) {
        io.stdout(host === undefined ? 'No fixed IP found.\n' : `No fixed IP found for host ${host}.\n`);
        return;
      }
      io.stdout(
        formatTable(
          ['network', 'IP address', 'hostname', 'host'],
          rows.map((row) => [row.network, row.address, row.hostname, row.host]),
        ),
      );
    },
  },
  reserve: {
    usage: 'novanet-manage fixed reserve --address=IP',
    summary: 'Keep a fixed IP from being handed out.',
    options: ADDRESS,
    async run(parsed, { manager }, io) {
      const fixed = await manager.fixedIps.reserve(optionOrPositional(parsed, 'address', 'IP', 'fixed reserve'));
      io.stdout(`reserved ${fixed.address}\n`);
    },
  },
  unreserve: {
    usage: 'novanet-manage fixed unreserve --address=IP',
    summary: 'Let a reserved fixed IP be handed out again.',
    options: ADDRESS,
    async run(parsed, { manager }, io) {
      const fixed = await manager.fixedIps.unreserve(optionOrPositional(parsed, 'address', 'IP', 'fixed unreserve'));
      io.stdout(`unreserved ${fixed.address}\n`);
    },
  },
};
