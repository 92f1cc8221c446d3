import { LATEST_SCHEMA_VERSION, schemaVersion, syncSchema } from '../../db/migrate.js';
import { noMorePositionals } from '../args.js';
import type { Category } from './command.js';

export const dbCommands: Category = {
  sync: {
    usage: 'novanet-manage db sync',
    summary: 'Create or upgrade the database schema.',
    options: {},
    async run(parsed, { db }, io) {
      noMorePositionals(parsed, 0, 'db sync');
      io.stdout(`${await syncSchema(db)}\n`);
    },
  },
  version: {
    usage: 'novanet-manage db version',
    summary: `Print the schema version of the database (this release: ${LATEST_SCHEMA_VERSION}).`,
    options: {},
    async run(parsed, { db }, io) {
      noMorePositionals(parsed, 0, 'db version');
      io.stdout(`${await schemaVersion(db)}\n`);
    },
  },
};
