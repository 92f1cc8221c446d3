/**
 * What every idle service asks the database each second and each report_interval is
 * served by an index (issue 17): EXPLAIN on MariaDB, with enough rows that a full
 * scan would be the optimiser's choice if no index fitted.
 */
import type { Knex } from 'knex';
import { describe, expect, it } from 'vitest';
import { heartbeat, registerHost } from '../../src/db/hosts.js';
import { vifStamps } from '../../src/db/virtualInterfaces.js';
import { createManager } from '../../src/managers/registry.js';
import { freshDatabase, testConfig } from '../support/databases.js';
import { RecordingHost } from '../support/recordingHost.js';

interface ExplainRow {
  table: string;
  type: string;
  key: string | null;
}

describe('the polls of an idle service on MariaDB', () => {
  it('read virtual_interfaces and hosts by index, never by a full scan', async () => {
    const database = await freshDatabase('mariadb');
    try {
      const { knex } = database.db;
      const manager = createManager({
        db: database.db,
        config: testConfig({ network_manager: 'flatdhcp', flat_interface: 'eth1' }),
        host: new RecordingHost(),
      });
      const created = await manager.networks.create({ label: 'n', fixedRangeV4: '10.0.0.0/16', numNetworks: 40, networkSize: 256 });
      // 4,000 VIFs over 40 networks and 50 hosts: a scan would read them all every second.
      const rows = [];
      for (let n = 0; n < 4000; n++) {
        const hex = n.toString(16).padStart(12, '0');
        rows.push({
          uuid: `00000000-0000-4000-8000-${hex}`,
          address: `fa:16:3e:${hex.slice(6, 8)}:${hex.slice(8, 10)}:${hex.slice(10, 12)}`,
          network_id: created[n % 40]!.id,
          instance_uuid: `11111111-0000-4000-8000-${hex}`,
          host: `compute${n % 50}`,
        });
      }
      await knex.batchInsert('virtual_interfaces', rows, 500);
      for (let n = 0; n < 50; n++) {
        await registerHost(knex, {
          name: `compute${n}`,
          role: 'compute',
          tunnelIp: null,
          wakeAddress: null,
          version: '0.1.0',
          now: new Date(),
        });
      }
      await knex.raw('ANALYZE TABLE virtual_interfaces, hosts');

      const explain = async (sql: string, bindings: readonly Knex.RawBinding[]) =>
        ((await knex.raw(`EXPLAIN ${sql}`, bindings)) as [ExplainRow[]])[0];
      // The watcher's VIF poll, in its widest form (served networks and every network held), as it is sent.
      const served = [created[0]!.id, created[1]!.id];
      const polls: { sql: string; bindings: Knex.RawBinding[] }[] = [];
      const listener = (query: { sql: string; bindings: Knex.RawBinding[] }) => {
        if (query.sql.includes('group by')) polls.push(query);
      };
      knex.on('query', listener);
      await vifStamps(knex, 'compute7', served, { everyHolder: true });
      knex.off('query', listener);
      expect(polls).toHaveLength(2);
      for (const poll of polls) {
        const plan = await explain(poll.sql, poll.bindings);
        // A seek (ref, range): neither a scan of the table (ALL) nor of a whole index (index).
        for (const step of plan) expect(['ref', 'range', 'eq_ref', 'const'], JSON.stringify(plan)).toContain(step.type);
      }
      // The heartbeat: one row by its unique name.
      const update = knex('hosts').where('name', 'compute7').update({ heartbeat_at: new Date() }).toSQL();
      const beat = await explain(update.sql, update.bindings);
      expect(beat[0], JSON.stringify(beat)).toMatchObject({ key: 'uniq_hosts_name' });
      await heartbeat(knex, 'compute7', { now: new Date() });
    } finally {
      await database.close();
    }
  });
});
