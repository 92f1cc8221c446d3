import type { Knex } from 'knex';

/**
 * A cluster of hosts: one row per novanet-network service (nova's `services` table,
 * reduced to what novanet's hosts need: role, tunnel address, version, heartbeat, last
 * reconcile), and the indexes each service's one-second poll of VIFs reads by (its
 * own, by host; those of the networks it serves, by network).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('virtual_interfaces', (table) => {
    table.index(['host', 'network_id'], 'virtual_interfaces_host_network_idx');
    table.index(['network_id'], 'virtual_interfaces_network_id_idx');
  });
  await knex.schema.createTable('hosts', (table) => {
    table.increments('id');
    table.string('name', 255).notNullable().unique('uniq_hosts_name');
    // 'network': may serve single-host networks (DHCP, gateway, NAT); 'compute': plugs its VMs only.
    table.string('role', 16).notNullable();
    table.string('tunnel_ip', 39).nullable();
    table.string('version', 32).notNullable();
    table.datetime('started_at', { precision: 6 }).notNullable();
    table.datetime('heartbeat_at', { precision: 6 }).notNullable();
    table.datetime('last_reconcile_at', { precision: 6 }).nullable();
    // The last full reconcile's errors, one per line (empty when it was clean).
    table.text('last_reconcile_errors').nullable();
    // The uuids of the networks whose bridge this host has built (served or plugged), comma-separated:
    // what GET os-novanet/instances/{uuid} reports as each VIF's `active`.
    table.text('built_networks').nullable();
    table.datetime('created_at', { precision: 6 }).nullable();
    table.datetime('updated_at', { precision: 6 }).nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('hosts');
  await knex.schema.alterTable('virtual_interfaces', (table) => {
    table.dropIndex(['host', 'network_id'], 'virtual_interfaces_host_network_idx');
    table.dropIndex(['network_id'], 'virtual_interfaces_network_id_idx');
  });
}
