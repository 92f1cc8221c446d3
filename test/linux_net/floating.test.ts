import { describe, expect, it } from 'vitest';
import { Invalid } from '../../src/errors.js';
import { FloatingDriver } from '../../src/linux_net/floating.js';
import { RecordingExecutor } from '../support/recordingExecutor.js';

function driver(options: { sendArp?: boolean } = {}) {
  const executor = new RecordingExecutor();
  const events: string[] = [];
  const floating = new FloatingDriver(executor, { sendArp: options.sendArp ?? false, arpCount: 3, log: (event) => events.push(event) });
  return { executor, floating, events };
}

describe('FloatingDriver', () => {
  it('binds a /32 on the device, accepting an address already there', async () => {
    const { executor, floating } = driver();
    await floating.bind('203.0.113.5', 'eth0');
    expect(executor.commands).toEqual([{ argv: ['ip', 'addr', 'add', '203.0.113.5/32', 'dev', 'eth0'], accept: [0, 2] }]);
  });

  it('announces the address with arping in the background when send_arp_for_ha is on', async () => {
    const { executor, floating } = driver({ sendArp: true });
    let release: () => void = () => undefined;
    executor.on(['arping'], () => new Promise((resolve) => { release = () => resolve({}); }));
    await floating.bind('203.0.113.5', 'eth0');
    // bind returned while arping still runs.
    expect(executor.argvs()).toEqual([
      ['ip', 'addr', 'add', '203.0.113.5/32', 'dev', 'eth0'],
      ['arping', '-U', '-A', '-I', 'eth0', '-c', '3', '203.0.113.5'],
    ]);
    release();
  });

  it('reports a failed arping without failing the bind', async () => {
    const { executor, floating, events } = driver({ sendArp: true });
    executor.on(['arping'], { code: 2, stderr: 'arping: socket: Operation not permitted' });
    await floating.bind('203.0.113.5', 'eth0');
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(events).toEqual(['floating.arping_failed']);
  });

  it('unbinds, accepting an address already gone', async () => {
    const { executor, floating } = driver();
    await floating.unbind('203.0.113.5', 'eth0');
    expect(executor.commands).toEqual([{ argv: ['ip', 'addr', 'del', '203.0.113.5/32', 'dev', 'eth0'], accept: [0, 2] }]);
  });

  it('flushes the conntrack entries to and from the address, accepting none found', async () => {
    const { executor, floating } = driver();
    await floating.forget('203.0.113.5');
    expect(executor.argvs()).toEqual([
      ['conntrack', '-D', '-d', '203.0.113.5'],
      ['conntrack', '-D', '-q', '203.0.113.5'],
    ]);
  });

  it('lists the /32 addresses bound on a device', async () => {
    const { executor, floating } = driver();
    executor.on(['ip', '-j', 'addr', 'show'], {
      stdout: JSON.stringify([{ addr_info: [
        { family: 'inet', local: '192.0.2.10', prefixlen: 24 },
        { family: 'inet', local: '203.0.113.5', prefixlen: 32 },
        { family: 'inet6', local: 'fe80::1', prefixlen: 64 },
      ] }]),
    });
    expect([...(await floating.bound('eth0'))]).toEqual(['203.0.113.5']);
  });

  it('refuses bad names and addresses before any command runs', async () => {
    const { executor, floating } = driver();
    await expect(floating.bind('203.0.113.5', 'eth0;reboot')).rejects.toThrow(Invalid);
    await expect(floating.bind('203.0.113.5/24', 'eth0')).rejects.toThrow(Invalid);
    await expect(floating.unbind('::ffff:203.0.113.5', 'eth0')).rejects.toThrow(Invalid);
    expect(executor.commands).toEqual([]);
  });
});
