/**
 * novanet-manage secgroup list/show (issue 19), run as the built program: what an
 * operator without the openstack client sees of security groups, their rules, their
 * members and the hosts their members' ports are on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManager } from '../../src/managers/registry.js';
import { type CliDatabase, cliDatabase, expectError, expectOk, run } from '../support/cli.js';
import { BACKENDS, testConfig } from '../support/databases.js';
import { RecordingHost } from '../support/recordingHost.js';

const INSTANCE = (n: number) => `00000000-0000-4000-8000-00000000000${n}`;

describe.each(BACKENDS)('novanet-manage secgroup on %s', { concurrent: true }, (backend) => {
  let cli: CliDatabase;
  let config: string;
  let web: number;
  const manage = (args: string[]) => run('manage', ['--config-file', config, ...args]);

  beforeAll(async () => {
    cli = await cliDatabase(backend, { sync: true });
    config = cli.config('novanet.conf', { network_manager: 'flatdhcp' });
    const manager = createManager({ db: cli.db, config: testConfig({ network_manager: 'flatdhcp' }), host: new RecordingHost() });
    await manager.networks.create({ label: 'private', fixedRangeV4: '10.50.0.0/24' });
    const group = await manager.securityGroups.create('p1', { name: 'web', description: 'web servers' });
    web = group.group.id;
    const app = await manager.securityGroups.create('p1', { name: 'app', description: 'app servers' });
    await manager.securityGroups.addRule('admin', { parentGroupId: web, ipProtocol: 'tcp', fromPort: 80, toPort: 443 });
    await manager.securityGroups.addRule('admin', { parentGroupId: web, ipProtocol: 'icmp', fromPort: 8, toPort: -1 });
    await manager.securityGroups.addRule('admin', { parentGroupId: web, groupId: app.group.id });
    for (const [n, host] of [
      [1, 'compute1'],
      [2, 'compute2'],
    ] as const) {
      await manager.allocation.allocate({ instanceUuid: INSTANCE(n), projectId: 'p1', host, securityGroups: ['web'] });
    }
  });

  afterAll(async () => {
    await cli?.close();
  });

  it('lists each group with its counts and the hosts its members are on', async () => {
    const listed = await manage(['secgroup', 'list', '--project_id=p1']);
    expectOk(listed);
    const line = listed.stdout.split('\n').find((entry) => / web /.test(entry));
    expect(line).toMatch(new RegExp(`^${web}\\s+p1\\s+web\\s+web servers\\s+3\\s+2\\s+compute1,compute2\\s*$`));
    expect(listed.stdout).toMatch(/\sapp\s+app servers\s+0\s+0\s+None\n/);
    const other = await manage(['secgroup', 'list', '--project_id=p9']);
    expectOk(other);
    expect(other.stdout).toBe('No security group in project p9.\n');
  });

  it('shows one group: its rules and each member with its host', async () => {
    const shown = await manage(['secgroup', 'show', String(web)]);
    expectOk(shown);
    expect(shown.stdout).toContain(`security group ${web}: web (project p1)\nweb servers\n`);
    expect(shown.stdout).toMatch(/\stcp\s+80-443\s+0\.0\.0\.0\/0\s*\n/);
    expect(shown.stdout).toMatch(/\sicmp\s+type 8 code -1\s+0\.0\.0\.0\/0\s*\n/);
    expect(shown.stdout).toMatch(/\sany\s+any\s+group app \(p1\)\s*\n/);
    expect(shown.stdout).toMatch(new RegExp(`${INSTANCE(1)}\\s+compute1\\s*\\n`));
    expect(shown.stdout).toMatch(new RegExp(`${INSTANCE(2)}\\s+compute2\\s*\\n`));
  });

  it('refuses an unknown or malformed id in one line', async () => {
    expectError(await manage(['secgroup', 'show', '--id=424242']), 'Security group 424242 not found.', 2);
    expectError(await manage(['secgroup', 'show', '--id=web']), 'Security group id should be integer', 2);
  });
});
