/**
 * The link driver against the real kernel and iproute2, inside a network namespace
 * this file creates and always deletes: a bridge built from an interface that carries
 * the host's address and default route keeps both, reads back as built, and a second
 * run changes nothing. Nothing here touches the root namespace's interfaces.
 */
import { describe, expect, it } from 'vitest';
import { LinkDriver } from '../../../src/linux_net/links.js';
import { kernelAvailable, useNamespace } from '../../support/netns.js';

const kernel = kernelAvailable([]);

describe.runIf(kernel)('LinkDriver on the real kernel (own network namespace)', () => {
  const { exec: inNs, executor } = useNamespace('links');

  it('builds a bridge from an interface with addresses and routes, then finds nothing to do', async () => {
    inNs('ip', 'link', 'add', 'nleth1', 'type', 'veth', 'peer', 'name', 'nleth1p');
    inNs('ip', 'link', 'set', 'nleth1p', 'up');
    inNs('ip', 'link', 'set', 'nleth1', 'up');
    inNs('ip', 'addr', 'add', '192.168.50.10/24', 'brd', '+', 'dev', 'nleth1');
    inNs('ip', 'route', 'add', 'default', 'via', '192.168.50.1', 'dev', 'nleth1', 'metric', '100');
    const mac = JSON.parse(inNs('ip', '-j', 'link', 'show', 'dev', 'nleth1'))[0].address as string;
    const links = new LinkDriver(executor);
    expect(await links.ensureBridge('br100', { interface: 'nleth1', mtu: 1400 })).toEqual([
      'created bridge br100',
      'mtu 1400 on br100',
      'br100 up',
      'enslaved nleth1 to br100',
      'moved 192.168.50.10/24 from nleth1 to br100',
      'moved route default via 192.168.50.1 to br100',
    ]);
    expect(await links.ensureFirstAddress('br100', '10.0.0.1', 24)).toEqual(['gateway 10.0.0.1/24 on br100']);
    const bridge = await links.show('br100');
    expect(bridge?.address).toBe(mac);
    expect(bridge?.mtu).toBe(1400);
    expect(bridge?.addr_info?.filter((entry) => entry.family === 'inet').map((entry) => `${entry.local}/${entry.prefixlen}`)).toEqual([
      '10.0.0.1/24',
      '192.168.50.10/24',
    ]);
    expect(JSON.parse(inNs('ip', '-j', 'route', 'show', 'default'))).toMatchObject([
      { dst: 'default', gateway: '192.168.50.1', dev: 'br100', metric: 100 },
    ]);
    // A restart: the same calls find everything right and change nothing.
    expect(await links.ensureBridge('br100', { interface: 'nleth1', mtu: 1400 })).toEqual([]);
    expect(await links.ensureFirstAddress('br100', '10.0.0.1', 24)).toEqual([]);
    expect(await links.ensureForwarding()).toBe(true);
    expect(await links.ensureForwarding()).toBe(false);
  });

  it('deletes the bridge', async () => {
    const links = new LinkDriver(executor);
    expect(await links.deleteBridge('br100')).toBe(true);
    expect(await links.show('br100')).toBeUndefined();
    expect(await links.deleteBridge('br100')).toBe(false);
  });
});
