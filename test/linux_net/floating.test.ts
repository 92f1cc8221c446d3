import { describe, expect, it } from 'vitest';
import { Invalid } from '../../src/errors.js';
import { CommandFailed } from '../../src/linux_net/command.js';
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
    executor.on(
      ['arping'],
      () =>
        new Promise((resolve) => {
          release = () => resolve({});
        }),
    );
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

  it('binds and unbinds many addresses with one ip -batch', async () => {
    const { executor, floating } = driver();
    await floating.bindAll(['203.0.113.5', '203.0.113.6'], 'eth0');
    await floating.unbindAll(['203.0.113.5', '203.0.113.6'], 'eth0');
    await floating.bindAll([], 'eth0');
    expect(executor.commands).toEqual([
      {
        argv: ['ip', '-force', '-batch', '-'],
        input: 'addr add 203.0.113.5/32 dev eth0\naddr add 203.0.113.6/32 dev eth0\n',
        accept: [0, 1],
      },
      {
        argv: ['ip', '-force', '-batch', '-'],
        input: 'addr del 203.0.113.5/32 dev eth0\naddr del 203.0.113.6/32 dev eth0\n',
        accept: [0, 1],
      },
    ]);
  });

  it('reads back what a failed batch left undone: an address already bound is fine, a missing one is an error', async () => {
    const { executor, floating } = driver();
    executor.on(['ip', '-force', '-batch'], { code: 1, stderr: 'RTNETLINK answers: File exists\nCommand failed -:1' });
    executor.once(['ip', '-j', 'addr', 'show'], {
      stdout: JSON.stringify([
        {
          addr_info: [
            { family: 'inet', local: '203.0.113.5', prefixlen: 32 },
            { family: 'inet', local: '203.0.113.6', prefixlen: 32 },
          ],
        },
      ]),
    });
    await floating.bindAll(['203.0.113.5', '203.0.113.6'], 'eth0');
    executor.once(['ip', '-j', 'addr', 'show'], {
      stdout: JSON.stringify([{ addr_info: [{ family: 'inet', local: '203.0.113.5', prefixlen: 32 }] }]),
    });
    await expect(floating.bindAll(['203.0.113.5', '203.0.113.6'], 'eth0')).rejects.toThrow(
      '1 of 2 addresses not bound (first 203.0.113.6)',
    );
  });

  it('runs at most eight arpings at once, a single new binding ahead of a backlog', async () => {
    const { executor, floating } = driver({ sendArp: true });
    const running: (() => void)[] = [];
    executor.on(['arping'], () => new Promise((resolve) => running.push(() => resolve({}))));
    const many = Array.from({ length: 20 }, (_, index) => `203.0.113.${index + 1}`);
    await floating.bindAll(many, 'eth0');
    await floating.bind('198.51.100.1', 'eth0');
    const arpings = () =>
      executor
        .argvs()
        .filter((argv) => argv[0] === 'arping')
        .map((argv) => argv.at(-1));
    expect(arpings()).toEqual(many.slice(0, 8));
    running.shift()!();
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(arpings()).toEqual([...many.slice(0, 8), '198.51.100.1']);
    while (running.length > 0) {
      running.shift()!();
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    expect(arpings()).toHaveLength(21);
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
      stdout: JSON.stringify([
        {
          addr_info: [
            { family: 'inet', local: '192.0.2.10', prefixlen: 24 },
            { family: 'inet', local: '203.0.113.5', prefixlen: 32 },
            { family: 'inet6', local: 'fe80::1', prefixlen: 64 },
          ],
        },
      ]),
    });
    expect([...(await floating.bound('eth0'))]).toEqual(['203.0.113.5']);
    // The interface's own addresses apart: a floating IP there would take the host's own traffic.
    const both = await floating.addresses('eth0');
    expect([...both.bound]).toEqual(['203.0.113.5']);
    expect([...both.own]).toEqual(['192.0.2.10']);
  });

  it('reports ip output that is not JSON as the command failing', async () => {
    const { executor, floating } = driver();
    executor.on(['ip', '-j', 'addr', 'show'], { stdout: '2: eth0: <BROADCAST,UP>' });
    await expect(floating.bound('eth0')).rejects.toThrow(CommandFailed);
    await expect(floating.bound('eth0')).rejects.toThrow('ip -j addr show dev eth0: output is not JSON');
  });

  it('refuses bad names and addresses before any command runs', async () => {
    const { executor, floating } = driver();
    await expect(floating.bind('203.0.113.5', 'eth0;reboot')).rejects.toThrow(Invalid);
    await expect(floating.bind('203.0.113.5/24', 'eth0')).rejects.toThrow(Invalid);
    await expect(floating.unbind('::ffff:203.0.113.5', 'eth0')).rejects.toThrow(Invalid);
    expect(executor.commands).toEqual([]);
  });
});
