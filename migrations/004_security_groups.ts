import type { Knex } from 'knex';

/**
 * Security groups (nova's tables and names): groups per project, their ingress rules
 * (a CIDR or another group as source), which instances are members, and the default
 * rules copied into each project's new `default` group.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('security_groups', (table) => {
    table.increments('id');
    table.string('name', 255).notNullable();
    table.string('description', 255).notNullable();
    table.string('project_id', 255).notNullable();
    table.string('user_id', 255).nullable();
    table.datetime('created_at', { precision: 6 }).nullable();
    table.datetime('updated_at', { precision: 6 }).nullable();
    table.unique(['project_id', 'name'], { indexName: 'uniq_security_groups_project_name' });
  });
  await knex.schema.createTable('security_group_rules', (table) => {
    table.increments('id');
    table.integer('parent_group_id').unsigned().notNullable().references('id').inTable('security_groups');
    // tcp, udp, icmp; null only for a group source without protocol (every protocol).
    table.string('protocol', 5).nullable();
    table.integer('from_port').nullable();
    table.integer('to_port').nullable();
    table.string('cidr', 43).nullable();
    // A group as source: every fixed IP of its members.
    table.integer('group_id').unsigned().nullable().references('id').inTable('security_groups');
    table.datetime('created_at', { precision: 6 }).nullable();
    table.index(['parent_group_id'], 'security_group_rules_parent_idx');
    table.index(['group_id'], 'security_group_rules_group_idx');
  });
  await knex.schema.createTable('security_group_instance_association', (table) => {
    table.increments('id');
    table.integer('security_group_id').unsigned().notNullable().references('id').inTable('security_groups');
    table.string('instance_uuid', 36).notNullable();
    table.datetime('created_at', { precision: 6 }).nullable();
    table.unique(['instance_uuid', 'security_group_id'], { indexName: 'uniq_security_group_instance' });
    table.index(['security_group_id'], 'security_group_instance_group_idx');
  });
  await knex.schema.createTable('security_group_default_rules', (table) => {
    table.increments('id');
    table.string('protocol', 5).notNullable();
    table.integer('from_port').notNullable();
    table.integer('to_port').notNullable();
    table.string('cidr', 43).notNullable();
    table.datetime('created_at', { precision: 6 }).nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('security_group_default_rules');
  await knex.schema.dropTableIfExists('security_group_instance_association');
  await knex.schema.dropTableIfExists('security_group_rules');
  await knex.schema.dropTableIfExists('security_groups');
}
