/**
 * The VXLAN driver's commands (issue 17), against a recording executor: an interface
 * created once and then only checked, one flood entry per peer kept exact, and only
 * its own kind of device removed. test/e2e/vxlan.test.ts shows the same on the kernel.
 */
import { describe, expect, it } from 'vitest';
import { Conflict } from '../../src/errors.js';
import { VxlanDriver } from '../../src/linux_net/vxlan.js';
import { RecordingExecutor } from '../support/recordingExecutor.js';

const SPEC = { id: 100, local: '172.31.0.21', dev: 'eth1', port: 4789, mtu: 1450 };
const SHOW = ['ip', '-d', '-j', 'link', 'show', 'dev', 'vxlan100'];
const existing = (data: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  stdout: JSON.stringify([{ ifname: 'vxlan100', flags: ['UP'], mtu: 1450, linkinfo: { info_kind: 'vxlan', info_data: data }, ...extra }]),
});

describe('VxlanDriver', () => {
  it('creates vxlan<VNI> on the underlay from the tunnel address, with the MTU, and brings it up', async () => {
    const executor = new RecordingExecutor().on(SHOW, { code: 1, stderr: 'Device "vxlan100" does not exist.' });
    const { name, changes } = await new VxlanDriver(executor).ensure(SPEC);
    expect(name).toBe('vxlan100');
    expect(executor.argvs().slice(1)).toEqual([
      ['ip', 'link', 'add', 'vxlan100', 'type', 'vxlan', 'id', '100', 'local', '172.31.0.21', 'dev', 'eth1', 'dstport', '4789'],
      ['ip', 'link', 'set', 'vxlan100', 'mtu', '1450'],
      ['ip', 'link', 'set', 'vxlan100', 'up'],
    ]);
    expect(changes).toEqual(['created vxlan100 (VNI 100) on eth1', 'mtu 1450 on vxlan100', 'vxlan100 up']);
  });

  it('runs no changing command when the interface is as wanted', async () => {
    const executor = new RecordingExecutor().on(SHOW, existing({ id: 100, local: '172.31.0.21', port: 4789 }));
    expect((await new VxlanDriver(executor).ensure(SPEC)).changes).toEqual([]);
    expect(executor.argvs()).toEqual([SHOW]);
  });

  it.each([
    ['another kind', { stdout: JSON.stringify([{ ifname: 'vxlan100', flags: [], mtu: 1500, linkinfo: { info_kind: 'veth' } }]) }],
    ['another VNI', existing({ id: 7, local: '172.31.0.21', port: 4789 })],
  ])('refuses to build on a vxlan100 of %s', async (_what, shown) => {
    const executor = new RecordingExecutor().on(SHOW, shown);
    await expect(new VxlanDriver(executor).ensure(SPEC)).rejects.toThrow(Conflict);
    expect(executor.argvs()).toEqual([SHOW]);
  });

  it.each([
    ['another local address', { id: 100, local: '172.31.0.99', port: 4789 }, 'was 172.31.0.99 port 4789, head-end'],
    ['another port', { id: 100, local: '172.31.0.21', port: 8472 }, 'was 172.31.0.21 port 8472, head-end'],
    ['a multicast group', { id: 100, local: '172.31.0.21', port: 4789, group: '239.1.1.1' }, 'was 172.31.0.21 port 4789, group 239.1.1.1'],
  ])('rebuilds its own vxlan100 built with %s (the configuration changed)', async (_what, data, was) => {
    const executor = new RecordingExecutor().on(SHOW, existing(data));
    const { changes } = await new VxlanDriver(executor).ensure(SPEC);
    expect(executor.argvs().slice(1, 3)).toEqual([
      ['ip', 'link', 'del', 'vxlan100'],
      ['ip', 'link', 'add', 'vxlan100', 'type', 'vxlan', 'id', '100', 'local', '172.31.0.21', 'dev', 'eth1', 'dstport', '4789'],
    ]);
    expect(changes[0]).toBe(`rebuilt vxlan100: from 172.31.0.21 port 4789, head-end (${was})`);
  });

  it('floods to a multicast group when given one: created with it, and checked against it', async () => {
    const spec = { ...SPEC, group: '239.1.1.1' };
    const fresh = new RecordingExecutor().on(SHOW, { code: 1, stderr: 'Device "vxlan100" does not exist.' });
    await new VxlanDriver(fresh).ensure(spec);
    expect(fresh.argvs()[1]).toEqual([
      'ip',
      'link',
      'add',
      'vxlan100',
      'type',
      'vxlan',
      'id',
      '100',
      'group',
      '239.1.1.1',
      'local',
      '172.31.0.21',
      'dev',
      'eth1',
      'dstport',
      '4789',
    ]);
    const same = new RecordingExecutor().on(SHOW, existing({ id: 100, local: '172.31.0.21', port: 4789, group: '239.1.1.1' }));
    expect((await new VxlanDriver(same).ensure(spec)).changes).toEqual([]);
    // Head-end before: rebuilt with the group.
    const before = new RecordingExecutor().on(SHOW, existing({ id: 100, local: '172.31.0.21', port: 4789 }));
    expect((await new VxlanDriver(before).ensure(spec)).changes[0]).toBe(
      'rebuilt vxlan100: from 172.31.0.21 port 4789, group 239.1.1.1 (was 172.31.0.21 port 4789, head-end)',
    );
  });

  it('keeps exactly one flood entry per peer: the missing appended, a departed one removed, learned MACs left', async () => {
    const fdb = [
      { mac: '00:00:00:00:00:00', dst: '172.31.0.10' },
      { mac: '00:00:00:00:00:00', dst: '172.31.0.23' },
      { mac: 'fa:16:3e:00:00:01', dst: '172.31.0.22' },
    ];
    const executor = new RecordingExecutor().on(['bridge', '-j', 'fdb', 'show'], { stdout: JSON.stringify(fdb) });
    const changes = await new VxlanDriver(executor).syncPeers('vxlan100', ['172.31.0.10', '172.31.0.22']);
    expect(executor.argvs().slice(1)).toEqual([
      ['bridge', 'fdb', 'append', '00:00:00:00:00:00', 'dev', 'vxlan100', 'dst', '172.31.0.22'],
      ['bridge', 'fdb', 'del', '00:00:00:00:00:00', 'dev', 'vxlan100', 'dst', '172.31.0.23'],
    ]);
    expect(changes).toEqual(['flood vxlan100 to 172.31.0.22', 'no flood vxlan100 to 172.31.0.23']);
  });

  it('removes only a VXLAN device under its name', async () => {
    const vxlan = new RecordingExecutor().on(SHOW, existing({ id: 100 }));
    expect(await new VxlanDriver(vxlan).delete(100)).toBe(true);
    expect(vxlan.argvs().at(-1)).toEqual(['ip', 'link', 'del', 'vxlan100']);
    const other = new RecordingExecutor().on(SHOW, {
      stdout: JSON.stringify([{ ifname: 'vxlan100', flags: [], mtu: 1500, linkinfo: { info_kind: 'veth' } }]),
    });
    expect(await new VxlanDriver(other).delete(100)).toBe(false);
    expect(other.argvs()).toEqual([SHOW]);
  });

  it('reads the underlay MTU', async () => {
    const executor = new RecordingExecutor().on(['ip', '-j', 'link', 'show', 'dev', 'eth1'], {
      stdout: JSON.stringify([{ ifname: 'eth1', mtu: 9000 }]),
    });
    expect(await new VxlanDriver(executor).underlayMtu('eth1')).toBe(9000);
  });
});
