/**
 * Allocation under real concurrency on MariaDB: two OS processes, each with its own
 * manager and knex pool and 32 concurrent async workers (test/support/allocationWorker.ts),
 * race for the same rows; afterwards the database itself is checked for doubles and
 * losses. This is what DESIGN.md promises: two services on one database never hand
 * out the same address, and no update is lost.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createManager } from '../../src/managers/registry.js';
import { expectAllocations, instanceUuid, race, snapshot } from '../support/allocationRace.js';
import { freshDatabase, type TestDatabase, testConfig } from '../support/databases.js';
import { RecordingHost } from '../support/recordingHost.js';

const PROCESSES = 2;

describe('allocation by 2 processes × 32 workers on one MariaDB', () => {
  let database: TestDatabase | undefined;
  afterEach(async () => {
    await database?.close();
    database = undefined;
  });

  async function networkOf(mode: string, request: { fixedRangeV4: string; networkSize?: number; numNetworks?: number }) {
    const config = { network_manager: mode, flat_interface: 'eth1', vlan_interface: 'eth1' };
    database = await freshDatabase('mariadb');
    const manager = createManager({ db: database.db, config: testConfig(config), host: new RecordingHost() });
    const created = await manager.networks.create({ label: 'race', ...request });
    return { config, url: database.url, knex: database.db.knex, created };
  }

  it('FlatDHCP: 2,000 instances get one address each; no address twice, none lost', async () => {
    const { config, url, knex } = await networkOf('flatdhcp', { fixedRangeV4: '10.16.0.0/20', networkSize: 4096 });
    const jobs = Array.from({ length: 2000 }, (_, index) => ({ instanceUuid: instanceUuid(index), projectId: 'demo' }));

    const reports = await race(Array<string>(PROCESSES).fill(url), config, jobs);

    expect(reports.flatMap((report) => report.errors)).toEqual([]);
    expect(new Set(reports.map((report) => report.pid)).size).toBe(PROCESSES);
    await expectAllocations(knex, reports, new Set(jobs.map((job) => job.instanceUuid)), new Set());
    const { fixed } = await snapshot(knex);
    expect(fixed.filter((row) => row.instance_uuid !== null)).toHaveLength(2000);
  });

  it('FlatDHCP with every third instance deallocated meanwhile: the rest hold exactly one each', async () => {
    const { config, url, knex } = await networkOf('flatdhcp', { fixedRangeV4: '10.32.0.0/20', networkSize: 4096 });
    const jobs = Array.from({ length: 2000 }, (_, index) => ({
      instanceUuid: instanceUuid(index),
      projectId: 'demo',
      deallocate: index % 3 === 2,
    }));

    const reports = await race(Array<string>(PROCESSES).fill(url), config, jobs);

    expect(reports.flatMap((report) => report.errors)).toEqual([]);
    const gone = new Set(jobs.filter((job) => job.deallocate).map((job) => job.instanceUuid));
    expect(new Set(reports.flatMap((report) => report.deallocated))).toEqual(gone);
    const live = new Set(jobs.filter((job) => !job.deallocate).map((job) => job.instanceUuid));
    await expectAllocations(knex, reports, live, gone);
    // DHCP modes keep a deallocated address associated until dnsmasq reports the lease
    // gone, so no address of a deallocated instance went to anyone else either.
    const { fixed } = await snapshot(knex);
    const associated = fixed.filter((row) => row.instance_uuid !== null);
    expect(associated).toHaveLength(2000);
    expect(new Set(associated.map((row) => row.instance_uuid)).size).toBe(2000);
  });

  it('Flat: 2,000 allocations through a 1,021-address pool reuse freed addresses without doubles', async () => {
    // Two of every three instances are deallocated at once, so the pool runs through its
    // never-used addresses and then hands out freed ones while others free theirs.
    const { config, url, knex } = await networkOf('flat', { fixedRangeV4: '10.48.0.0/22', networkSize: 1024 });
    const jobs = Array.from({ length: 2000 }, (_, index) => ({
      instanceUuid: instanceUuid(index),
      projectId: 'demo',
      deallocate: index % 3 !== 0,
    }));

    const reports = await race(Array<string>(PROCESSES).fill(url), config, jobs);

    expect(reports.flatMap((report) => report.errors)).toEqual([]);
    const gone = new Set(jobs.filter((job) => job.deallocate).map((job) => job.instanceUuid));
    const live = new Set(jobs.filter((job) => !job.deallocate).map((job) => job.instanceUuid));
    await expectAllocations(knex, reports, live, gone);
    const { fixed } = await snapshot(knex);
    // Flat lets an address go at deallocation: only live instances are associated.
    expect(new Set(fixed.flatMap((row) => (row.instance_uuid === null ? [] : [row.instance_uuid])))).toEqual(live);
    const told = reports.flatMap((report) => report.allocated.map((entry) => entry.addresses[0]));
    expect(new Set(told).size).toBeLessThan(told.length); // freed addresses really were reused
  });

  it('VLAN: 16 free networks, 40 projects racing from both processes: 16 get one network each, 24 get NoMoreNetworks', async () => {
    const { config, url, knex, created } = await networkOf('vlan', { fixedRangeV4: '10.64.0.0/24', numNetworks: 16, networkSize: 16 });
    expect(created).toHaveLength(16);
    // Each project boots two instances, one in each process, so the processes race
    // each other for the free networks and for the same project.
    const projects = Array.from({ length: 40 }, (_, index) => `project-${index}`);
    const jobs = projects.flatMap((projectId, index) => [
      { instanceUuid: instanceUuid(2 * index), projectId },
      { instanceUuid: instanceUuid(2 * index + 1), projectId },
    ]);

    const reports = await race(Array<string>(PROCESSES).fill(url), config, jobs);

    const errors = reports.flatMap((report) => report.errors);
    const unexpected = errors.filter((error) => error.name !== 'NoMoreNetworks');
    expect(unexpected).toEqual([]);
    for (const error of errors)
      expect(error.message).toBe(
        `no unassociated network is left for project ${error.projectId}; create more with novanet-manage network create`,
      );

    const owners = (await knex('networks').select('id', 'uuid', 'project_id')) as { id: number; uuid: string; project_id: string | null }[];
    expect(owners.every((network) => network.project_id !== null)).toBe(true);
    const winners = new Set(owners.map((network) => network.project_id));
    expect(winners.size).toBe(16); // each network to a different project
    const losers = projects.filter((project) => !winners.has(project));
    expect(losers).toHaveLength(24);
    // A winner's instances all landed on its own network; a loser's all failed.
    const networkOfProject = new Map(owners.map((network) => [network.project_id, network.uuid]));
    const allocated = reports.flatMap((report) => report.allocated);
    expect(allocated).toHaveLength(32);
    for (const entry of allocated) expect(entry.networks).toEqual([networkOfProject.get(entry.projectId)]);
    expect(new Set(errors.map((error) => error.projectId))).toEqual(new Set(losers));
    expect(errors).toHaveLength(48);
    await expectAllocations(knex, reports, new Set(allocated.map((entry) => entry.instanceUuid)), new Set());
  });
});
