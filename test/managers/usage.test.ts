import { describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/databases.js';
import { firstAddress, harness, instance, MODES, useDatabase } from '../support/managers.js';

describe.each(BACKENDS)('usage on %s', (backend) => {
  const db = useDatabase(backend);

  it.each(MODES)("counts every network's addresses: all, reserved, held, allocated, leased (%s)", async (mode) => {
    const h = harness(db(), mode);
    const [a, b] = await h.manager.networks.create({
      label: 'u',
      fixedRangeV4: '10.0.0.0/24',
      numNetworks: 2,
      networkSize: 128,
      projectId: 'p1',
    });
    const info = await h.manager.allocation.allocate({
      instanceUuid: instance(1),
      projectId: 'p1',
      host: 'compute1',
      requestedNetworks: [{ networkUuid: a!.uuid }],
    });
    await h.manager.allocation.allocate({
      instanceUuid: instance(2),
      projectId: 'p1',
      host: 'compute1',
      requestedNetworks: [{ networkUuid: a!.uuid }],
    });
    await h.manager.leases.lease(firstAddress(info));
    const reserved = mode === 'vlan' ? 4 : 3;
    expect(await h.manager.fixedIps.usage()).toEqual([
      { network: expect.objectContaining({ id: a!.id }), usage: { total: 128, reserved, associated: 2, allocated: 2, leased: 1 } },
      { network: expect.objectContaining({ id: b!.id }), usage: { total: 128, reserved, associated: 0, allocated: 0, leased: 0 } },
    ]);
  });
});
