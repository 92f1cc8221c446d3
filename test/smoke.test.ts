import { describe, expect, it } from 'vitest';
import { createManager } from '../src/managers/registry.js';
import { BACKENDS, freshDatabase, testConfig } from './support/databases.js';
import { RecordingHost } from './support/recordingHost.js';

describe.each(BACKENDS)('smoke on %s', (backend) => {
  it('creates, allocates, deallocates', async () => {
    const { db, close } = await freshDatabase(backend);
    try {
      const host = new RecordingHost();
      const manager = createManager({ db, config: testConfig({ network_manager: 'flatdhcp', flat_interface: 'eth1' }), host });
      const [net] = await manager.createNetworks({ label: 'private', fixedRangeV4: '10.0.0.0/24' });
      expect(net!.dhcpStart).toBe('10.0.0.2');
      const info = await manager.allocateForInstance({ instanceUuid: '11111111-1111-1111-1111-111111111111', projectId: 'p1', host: 'compute1', hostname: 'vm1' });
      expect(info.network_info[0]!.network.subnets[0]!.ips[0]!.address).toBe('10.0.0.2');
      const again = await manager.allocateForInstance({ instanceUuid: '11111111-1111-1111-1111-111111111111', projectId: 'p1', host: 'compute1', hostname: 'vm1' });
      expect(again).toEqual(info);
      await manager.deallocateForInstance('11111111-1111-1111-1111-111111111111');
      expect(host.kinds()).toContain('release-lease');
    } finally {
      await close();
    }
  });
});
