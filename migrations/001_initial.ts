import type { Knex } from 'knex';

/** Timestamps with microseconds: fixed-IP reuse is ordered by updated_at. */
function timestamps(table: Knex.CreateTableBuilder): void {
  table.datetime('created_at', { precision: 6 }).nullable();
  table.datetime('updated_at', { precision: 6 }).nullable();
}

/** nova's schema (names kept for operators), plus hostname/host on VIFs, tokens and quotas. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('networks', (table) => {
    table.increments('id');
    table.string('uuid', 36).notNullable();
    table.string('label', 255).notNullable();
    table.boolean('injected').notNullable().defaultTo(false);
    table.string('cidr', 43).nullable();
    table.string('cidr_v6', 43).nullable();
    table.boolean('multi_host').notNullable().defaultTo(false);
    table.string('netmask', 39).nullable();
    table.string('netmask_v6', 39).nullable();
    table.string('gateway', 39).nullable();
    table.string('gateway_v6', 39).nullable();
    table.string('broadcast', 39).nullable();
    table.string('dns1', 39).nullable();
    table.string('dns2', 39).nullable();
    table.string('bridge', 15).nullable();
    table.string('bridge_interface', 15).nullable();
    table.integer('vlan').nullable();
    table.string('vpn_public_address', 39).nullable();
    table.integer('vpn_public_port').nullable();
    table.string('vpn_private_address', 39).nullable();
    table.string('dhcp_start', 39).nullable();
    table.integer('rxtx_base').nullable();
    table.string('project_id', 255).nullable();
    table.integer('priority').nullable();
    table.string('host', 255).nullable();
    table.integer('mtu').nullable();
    table.string('dhcp_server', 39).nullable();
    table.boolean('enable_dhcp').notNullable().defaultTo(true);
    table.boolean('share_address').notNullable().defaultTo(false);
    timestamps(table);
    table.datetime('deleted_at', { precision: 6 }).nullable();
    // nova's soft delete: 0 while live, the row's id once deleted, so unique keys
    // apply to live rows only.
    table.integer('deleted').notNullable().defaultTo(0);
    table.unique(['vlan', 'deleted'], { indexName: 'uniq_networks_vlan_deleted' });
    table.unique(['uuid', 'deleted'], { indexName: 'uniq_networks_uuid_deleted' });
    table.unique(['cidr', 'deleted'], { indexName: 'uniq_networks_cidr_deleted' });
    table.index(['project_id'], 'networks_project_id_idx');
  });

  await knex.schema.createTable('virtual_interfaces', (table) => {
    table.increments('id');
    table.string('uuid', 36).notNullable().unique('uniq_virtual_interfaces_uuid');
    table.string('address', 17).notNullable().unique('uniq_virtual_interfaces_address');
    table.integer('network_id').unsigned().notNullable().references('id').inTable('networks');
    table.string('instance_uuid', 36).notNullable();
    table.string('project_id', 255).nullable();
    table.string('hostname', 255).nullable();
    table.string('host', 255).nullable();
    table.string('tag', 255).nullable();
    timestamps(table);
    // One VIF per network per instance: makes a repeated allocate call idempotent even
    // when two of them race.
    table.unique(['instance_uuid', 'network_id'], { indexName: 'uniq_virtual_interfaces_instance_network' });
  });

  await knex.schema.createTable('fixed_ips', (table) => {
    table.increments('id');
    table.string('address', 39).notNullable().unique('uniq_fixed_ips_address');
    table.integer('network_id').unsigned().notNullable().references('id').inTable('networks');
    table.integer('virtual_interface_id').unsigned().nullable();
    table.string('instance_uuid', 36).nullable();
    table.boolean('allocated').notNullable().defaultTo(false);
    table.boolean('leased').notNullable().defaultTo(false);
    table.boolean('reserved').notNullable().defaultTo(false);
    table.string('host', 255).nullable();
    timestamps(table);
    // The allocation scan: equality on the first five columns, then rows come in
    // reuse order (never-used first, then least recently freed).
    table.index(['network_id', 'instance_uuid', 'reserved', 'leased', 'updated_at'], 'fixed_ips_free_idx');
    table.index(['instance_uuid'], 'fixed_ips_instance_uuid_idx');
    table.index(['virtual_interface_id'], 'fixed_ips_virtual_interface_id_idx');
  });

  await knex.schema.createTable('floating_ips', (table) => {
    table.increments('id');
    table.string('address', 39).notNullable().unique('uniq_floating_ips_address');
    table.integer('fixed_ip_id').unsigned().nullable();
    table.string('project_id', 255).nullable();
    table.string('host', 255).nullable();
    table.boolean('auto_assigned').notNullable().defaultTo(false);
    table.string('pool', 255).notNullable();
    table.string('interface', 15).nullable();
    timestamps(table);
    table.index(['pool', 'project_id'], 'floating_ips_pool_project_idx');
    table.index(['fixed_ip_id'], 'floating_ips_fixed_ip_id_idx');
  });

  await knex.schema.createTable('api_tokens', (table) => {
    table.increments('id');
    table.string('token_hash', 64).notNullable().unique('uniq_api_tokens_hash');
    table.string('project_id', 255).notNullable();
    table.string('role', 16).notNullable();
    table.string('description', 255).nullable();
    timestamps(table);
    table.datetime('expires_at', { precision: 6 }).nullable();
  });

  await knex.schema.createTable('quotas', (table) => {
    table.increments('id');
    table.string('project_id', 255).notNullable();
    table.string('resource', 64).notNullable();
    table.integer('hard_limit').notNullable();
    timestamps(table);
    table.unique(['project_id', 'resource'], { indexName: 'uniq_quotas_project_resource' });
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const table of ['quotas', 'api_tokens', 'floating_ips', 'fixed_ips', 'virtual_interfaces', 'networks']) {
    await knex.schema.dropTableIfExists(table);
  }
}
