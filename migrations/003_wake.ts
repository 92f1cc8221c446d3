import type { Knex } from 'knex';

/**
 * Where each service listens for wakes (`ADDRESS:PORT`): a service that changed what
 * another host acts on tells it to poll the database now, rather than within a second.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('hosts', (table) => {
    table.string('wake_address', 64).nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('hosts', (table) => {
    table.dropColumn('wake_address');
  });
}
