/**
 * What the API asks of the managers beyond the CLI's needs: one fixed IP by address
 * (os-fixed-ips show) and the networks a project may see (os-networks for members).
 */
import { describe, expect, it } from 'vitest';
import { FixedIpNotFound, Invalid } from '../../src/errors.js';
import { BACKENDS } from '../support/databases.js';
import { expectRefused, firstAddress, harness, instance, MODES, useDatabase } from '../support/managers.js';

describe.each(BACKENDS)('API queries on %s', (backend) => {
  const db = useDatabase(backend);

  describe.each(MODES)('in %s mode', (mode) => {
    it('getFixedIp: the address with its network, holder and reserved flag, as fixed list has it', async () => {
      const h = harness(db(), mode);
      await h.manager.networks.create({ label: 'a', fixedRangeV4: '10.0.0.0/24' });
      const info = await h.manager.allocation.allocate({ instanceUuid: instance(1), projectId: 'p1', host: 'compute1', hostname: 'vm1' });
      const address = firstAddress(info);
      const held = await h.manager.fixedIps.get(address);
      expect(held).toEqual({
        network: '10.0.0.0/24',
        address,
        hostname: 'vm1',
        host: 'compute1',
        instanceUuid: instance(1),
        reserved: false,
        allocated: true,
        leased: false,
      });
      expect(held).toEqual((await h.manager.fixedIps.list()).find((row) => row.address === address));
      expect(await h.manager.fixedIps.get(' 10.0.0.0 ')).toMatchObject({
        address: '10.0.0.0',
        reserved: true,
        hostname: null,
        host: null,
        instanceUuid: null,
      });
    });

    it('getFixedIp refuses unknown and malformed addresses', async () => {
      const h = harness(db(), mode);
      await h.manager.networks.create({ label: 'a', fixedRangeV4: '10.0.0.0/24' });
      await expectRefused(db(), () => h.manager.fixedIps.get('10.1.0.1'), FixedIpNotFound, /fixed IP 10\.1\.0\.1 not found in any network/);
      await expectRefused(db(), () => h.manager.fixedIps.get('10.1.0'), Invalid, /address must be an IP address/);
    });

    it('listNetworks visibleTo: the unowned networks and the project’s own, not other projects’', async () => {
      const h = harness(db(), mode);
      const [shared] = await h.manager.networks.create({ label: 'shared', fixedRangeV4: '10.0.0.0/24' });
      const [mine] = await h.manager.networks.create({ label: 'mine', fixedRangeV4: '10.1.0.0/24', projectId: 'p1' });
      await h.manager.networks.create({ label: 'theirs', fixedRangeV4: '10.2.0.0/24', projectId: 'p2' });
      expect((await h.manager.networks.list({ visibleTo: 'p1' })).map((network) => network.id)).toEqual([shared!.id, mine!.id]);
      expect((await h.manager.networks.list({ visibleTo: 'p3' })).map((network) => network.label)).toEqual(['shared']);
      expect((await h.manager.networks.list({ projectId: 'p1' })).map((network) => network.label)).toEqual(['mine']);
      expect(await h.manager.networks.list()).toHaveLength(3);
    });
  });
});
