import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Invalid } from '../../../src/errors.js';
import {
  type DhcpNetwork,
  DnsmasqDriver,
  type DnsmasqOptions,
  dnsmasqArgs,
  hostsFile,
  type NetworkFiles,
  networkFiles,
  RELOAD_DELAY_MS,
} from '../../../src/linux_net/dnsmasq/index.js';
import { FakeDnsmasqs, HOSTS, NETWORK, dnsmasqOptions as options } from '../../support/dnsmasq.js';
import { notInstalled, RecordingExecutor } from '../../support/recordingExecutor.js';

describe('DnsmasqDriver', () => {
  let statePath: string;
  let executor: RecordingExecutor;
  let driver: DnsmasqDriver;
  let files: NetworkFiles;
  let fakes: FakeDnsmasqs;

  beforeEach(() => {
    statePath = mkdtempSync(join(tmpdir(), 'novanet-dnsmasq-'));
    executor = new RecordingExecutor();
    driver = new DnsmasqDriver(executor, options(statePath));
    files = driver.files('br100');
    fakes = new FakeDnsmasqs();
    fakes.signalThrough(executor);
  });

  afterEach(() => {
    fakes.killAll();
    rmSync(statePath, { recursive: true, force: true });
  });

  /** A stand-in for this network's running dnsmasq, named by its pid file. */
  function fakeDnsmasq(argv: string[]): Promise<number> {
    return fakes.start(argv, files.pid);
  }

  function argvFor(network: DhcpNetwork = NETWORK, driverOptions: DnsmasqOptions = options(statePath)): string[] {
    return dnsmasqArgs(network, files, driverOptions);
  }

  it('keeps its files where networkFiles puts them, under its state_path', () => {
    expect(files).toEqual(networkFiles(statePath, 'br100'));
  });

  it('starts dnsmasq when none runs, after writing its files', async () => {
    expect(await driver.ensure(NETWORK, HOSTS)).toBe('started');
    expect(executor.commands).toEqual([{ argv: argvFor() }]);
    expect(readFileSync(files.hosts, 'utf8')).toBe(hostsFile(HOSTS, 'novalocal'));
    expect(readFileSync(files.opts, 'utf8')).toBe('tag:net1,option:router,10.0.0.1\n');
    expect(readFileSync(files.conf, 'utf8')).toBe('');
  });

  it('leaves a running dnsmasq with the same command line and files alone (hitless)', async () => {
    await driver.ensure(NETWORK, HOSTS);
    await fakeDnsmasq(argvFor());
    executor.clear();
    expect(await driver.ensure(NETWORK, HOSTS)).toBe('none');
    expect(executor.commands).toEqual([]);
  });

  it('sends SIGHUP when the hosts change', async () => {
    await driver.ensure(NETWORK, HOSTS);
    const pid = await fakeDnsmasq(argvFor());
    executor.clear();
    const more = [...HOSTS, { mac: 'fa:16:3e:00:00:05', hostname: 'db-1', address: '10.0.0.5' }];
    expect(await driver.ensure(NETWORK, more)).toBe('reloaded');
    expect(executor.commands).toEqual([{ argv: ['kill', '-HUP', String(pid)] }]);
    expect(readFileSync(files.hosts, 'utf8')).toContain('fa:16:3e:00:00:05,db-1.novalocal,10.0.0.5\n');
    // Written once: the next ensure finds nothing to do.
    executor.clear();
    expect(await driver.ensure(NETWORK, more)).toBe('none');
    expect(executor.commands).toEqual([]);
  });

  it('sends SIGHUP when the files were written but the SIGHUP never sent (service died in between)', async () => {
    await driver.ensure(NETWORK, HOSTS);
    const pid = await fakeDnsmasq(argvFor());
    const more = [...HOSTS, { mac: 'fa:16:3e:00:00:05', hostname: 'db-1', address: '10.0.0.5' }];
    // What a crash right after writing the hosts file leaves behind.
    writeFileSync(files.hosts, hostsFile(more, 'novalocal'));
    executor.clear();
    expect(await driver.ensure(NETWORK, more)).toBe('reloaded');
    expect(executor.argvs()).toEqual([['kill', '-HUP', String(pid)]]);
  });

  it('sends SIGHUP when the DHCP options change', async () => {
    await driver.ensure(NETWORK, HOSTS);
    const pid = await fakeDnsmasq(argvFor());
    executor.clear();
    expect(await driver.ensure({ ...NETWORK, mtu: 1450 }, HOSTS)).toBe('reloaded');
    expect(executor.argvs()).toEqual([['kill', '-HUP', String(pid)]]);
    expect(readFileSync(files.opts, 'utf8')).toBe('tag:net1,option:router,10.0.0.1\ntag:net1,option:mtu,1450\n');
  });

  it('restarts dnsmasq when its command line changes (SIGHUP does not reload dhcp-range)', async () => {
    await driver.ensure(NETWORK, HOSTS);
    const pid = await fakeDnsmasq(argvFor());
    executor.clear();
    const moved = { ...NETWORK, dhcpStart: '10.0.0.10' };
    expect(await driver.ensure(moved, HOSTS)).toBe('restarted');
    expect(executor.commands).toEqual([{ argv: ['kill', '-TERM', String(pid)], accept: [0, 1] }, { argv: argvFor(moved) }]);
    expect(existsSync(`/proc/${pid}/cmdline`) && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('dnsmasq')).toBe(false);
  });

  it('escalates to SIGKILL when dnsmasq outlives SIGTERM, before starting its successor', async () => {
    await driver.ensure(NETWORK, HOSTS);
    const pid = await fakeDnsmasq(argvFor());
    executor.clear();
    executor.once(['kill', '-TERM'], {});
    const moved = { ...NETWORK, dhcpStart: '10.0.0.10' };
    expect(await driver.ensure(moved, HOSTS)).toBe('restarted');
    expect(executor.commands).toEqual([
      { argv: ['kill', '-TERM', String(pid)], accept: [0, 1] },
      { argv: ['kill', '-KILL', String(pid)], accept: [0, 1] },
      { argv: argvFor(moved) },
    ]);
  });

  it('restarts dnsmasq when the configured lease time or DNS servers change', async () => {
    await driver.ensure(NETWORK, HOSTS);
    await fakeDnsmasq(argvFor());
    executor.clear();
    const changed = new DnsmasqDriver(executor, options(statePath, { dnsServers: ['9.9.9.9'] }));
    expect(await changed.ensure(NETWORK, HOSTS)).toBe('restarted');
    expect(executor.argvs()[1]).toContain('--server=9.9.9.9');
  });

  it.each([
    [
      'names a dead process',
      async () => {
        const dead = spawn('true');
        await new Promise((resolve) => dead.on('exit', resolve));
        return `${dead.pid}\n`;
      },
    ],
    // A reused pid: alive, but not a dnsmasq.
    ['names a process that is not this dnsmasq', async () => `${process.pid}\n`],
    ['holds garbage', async () => 'not a pid\n'],
  ])('starts a new dnsmasq when the pid file %s', async (_what, pidFile) => {
    const content = await pidFile();
    await driver.ensure(NETWORK, HOSTS);
    writeFileSync(files.pid, content);
    executor.clear();
    expect(await driver.ensure(NETWORK, HOSTS)).toBe('started');
    expect(executor.commands).toEqual([{ argv: argvFor() }]);
  });

  it('reports a dnsmasq that fails to start', async () => {
    executor.on(['env'], { code: 2, stderr: 'dnsmasq: failed to create listening socket for 10.0.0.1: Cannot assign requested address\n' });
    await expect(driver.ensure(NETWORK, HOSTS)).rejects.toThrow('failed to create listening socket for 10.0.0.1');
  });

  it('stop kills the running dnsmasq and removes its files', async () => {
    await driver.ensure(NETWORK, HOSTS);
    const pid = await fakeDnsmasq(argvFor());
    executor.clear();
    expect(await driver.stop('br100')).toBe(true);
    expect(executor.commands).toEqual([{ argv: ['kill', '-TERM', String(pid)], accept: [0, 1] }]);
    for (const file of Object.values(files)) expect(existsSync(file)).toBe(false);
  });

  it('stop without a running dnsmasq only removes the files', async () => {
    await driver.ensure(NETWORK, HOSTS);
    executor.clear();
    expect(await driver.stop('br100')).toBe(false);
    expect(executor.commands).toEqual([]);
    for (const file of Object.values(files)) expect(existsSync(file)).toBe(false);
    expect(await driver.stop('br100')).toBe(false);
  });

  describe('hosts one by one', () => {
    const NEW = { mac: 'fa:16:3e:00:00:05', hostname: 'db-1', address: '10.0.0.5' };
    const hostsdirFiles = () => readdirSync(files.hostsdir).map((name) => `${name}: ${readFileSync(join(files.hostsdir, name), 'utf8')}`);

    afterEach(() => {
      vi.useRealTimers();
    });

    it('knows no hosts of a bridge it has not ensured in this process', async () => {
      expect(await driver.addHosts('br100', [NEW])).toBe(false);
      expect(await driver.removeHosts('br100', HOSTS)).toBe(false);
      expect(existsSync(files.hostsdir)).toBe(false);
    });

    it('adds a host as one hostsdir file, without a reload; the next ensure finds nothing to do', async () => {
      await driver.ensure(NETWORK, HOSTS);
      await fakeDnsmasq(argvFor());
      executor.clear();
      expect(await driver.addHosts('br100', [NEW])).toBe(true);
      expect(executor.commands).toEqual([]);
      expect(hostsdirFiles()).toEqual(['fa-16-3e-00-00-05: fa:16:3e:00:00:05,db-1.novalocal,10.0.0.5\n']);
      // A restarted service with the same hosts, in another order: dnsmasq holds them all.
      const restarted = new DnsmasqDriver(executor, options(statePath));
      expect(await restarted.ensure(NETWORK, [NEW, ...HOSTS].reverse())).toBe('none');
      expect(executor.commands).toEqual([]);
      expect(readFileSync(files.hosts, 'utf8').split('\n').filter(Boolean).sort()).toEqual(
        hostsFile([...HOSTS, NEW], 'novalocal')
          .split('\n')
          .filter(Boolean)
          .sort(),
      );
      expect(hostsdirFiles()).toEqual([]);
    });

    it('says which hosts it gave dnsmasq a new list leaves out or moves, added one by one or not (issue 17)', async () => {
      expect(driver.departing('br100', [])).toEqual([]);
      await driver.ensure(NETWORK, HOSTS);
      await fakeDnsmasq(argvFor());
      // A line with a DHCPv6 address: its IPv4 address is still the third field.
      await driver.addHosts('br100', [{ ...NEW, addressV6: 'fd00::a94a:8fe5:ff00:5' }]);
      const [first, ...rest] = HOSTS;
      const moved = { ...rest[0]!, address: '10.0.0.99' };
      expect(driver.departing('br100', [moved, ...rest.slice(1)])).toEqual([
        { mac: first!.mac, address: first!.address },
        { mac: rest[0]!.mac, address: rest[0]!.address },
        { mac: NEW.mac, address: NEW.address },
      ]);
      expect(driver.departing('br100', [...HOSTS, NEW])).toEqual([]);
    });

    it('adds the hosts of one call as one hostsdir file, and a later call as another', async () => {
      await driver.ensure(NETWORK, HOSTS);
      await fakeDnsmasq(argvFor());
      executor.clear();
      const more = [NEW, { mac: 'fa:16:3e:00:00:06', hostname: 'db-2', address: '10.0.0.6' }];
      expect(await driver.addHosts('br100', more)).toBe(true);
      expect(await driver.addHosts('br100', [{ mac: 'fa:16:3e:00:00:07', hostname: 'db-3', address: '10.0.0.7' }])).toBe(true);
      expect(executor.commands).toEqual([]);
      expect(hostsdirFiles()).toEqual([
        'fa-16-3e-00-00-05: fa:16:3e:00:00:05,db-1.novalocal,10.0.0.5\nfa:16:3e:00:00:06,db-2.novalocal,10.0.0.6\n',
        'fa-16-3e-00-00-07: fa:16:3e:00:00:07,db-3.novalocal,10.0.0.7\n',
      ]);
      // The loaded record counts all three: a restarted service has nothing to do.
      const restarted = new DnsmasqDriver(executor, options(statePath));
      expect(
        await restarted.ensure(NETWORK, [...HOSTS, ...more, { mac: 'fa:16:3e:00:00:07', hostname: 'db-3', address: '10.0.0.7' }]),
      ).toBe('none');
    });

    it('removes hosts from the hosts file and dnsmasq with one reload, a moment later, for all of them', async () => {
      await driver.ensure(NETWORK, HOSTS);
      const pid = await fakeDnsmasq(argvFor());
      executor.clear();
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      expect(await driver.removeHosts('br100', [HOSTS[0]!])).toBe(true);
      expect(await driver.removeHosts('br100', [HOSTS[1]!])).toBe(true);
      expect(readFileSync(files.hosts, 'utf8')).toBe(hostsFile(HOSTS, 'novalocal'));
      expect(executor.commands).toEqual([]);
      await vi.advanceTimersByTimeAsync(RELOAD_DELAY_MS - 1);
      expect(executor.commands).toEqual([]);
      await vi.advanceTimersByTimeAsync(1);
      expect(executor.argvs()).toEqual([['kill', '-HUP', String(pid)]]);
      expect(readFileSync(files.hosts, 'utf8')).toBe('');
      executor.clear();
      expect(await driver.ensure(NETWORK, [])).toBe('none');
    });

    it('reloads at once when a new host takes an address dnsmasq still holds for a removed one', async () => {
      await driver.ensure(NETWORK, HOSTS);
      const pid = await fakeDnsmasq(argvFor());
      executor.clear();
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      await driver.removeHosts('br100', [HOSTS[0]!]);
      const successor = { ...NEW, address: HOSTS[0]!.address };
      await driver.addHosts('br100', [successor]);
      expect(executor.argvs()).toEqual([['kill', '-HUP', String(pid)]]);
      expect(readFileSync(files.hosts, 'utf8')).toBe(hostsFile([HOSTS[1]!, successor], 'novalocal'));
      expect(hostsdirFiles()).toEqual([]);
      // The pending reload was this one.
      await vi.advanceTimersByTimeAsync(2 * RELOAD_DELAY_MS);
      expect(executor.commands).toHaveLength(1);
    });

    it('lets hosts change while a reload runs: an addition made meanwhile stays, a removal waits for the next reload', async () => {
      await driver.ensure(NETWORK, HOSTS);
      const pid = await fakeDnsmasq(argvFor());
      executor.clear();
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      let release: () => void = () => undefined;
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      executor.once(['kill', '-HUP'], async () => {
        await held;
        return {};
      });
      // The reload's file removals are real I/O: wait for them a turn at a time.
      const until = async (done: () => boolean) => {
        for (let turn = 0; turn < 10_000 && !done(); turn++) await new Promise((resolve) => setImmediate(resolve));
      };
      await driver.removeHosts('br100', [HOSTS[0]!]);
      await driver.addHosts('br100', [NEW]);
      await vi.advanceTimersByTimeAsync(RELOAD_DELAY_MS);
      await until(() => executor.commands.length > 0);
      // The SIGHUP is in flight: its hosts file and hostsdir were done before it.
      expect(executor.argvs()).toEqual([['kill', '-HUP', String(pid)]]);
      expect(hostsdirFiles()).toEqual([]);
      expect(readFileSync(files.hosts, 'utf8')).toBe(hostsFile([HOSTS[1]!, NEW], 'novalocal'));
      const later = { mac: 'fa:16:3e:00:00:06', hostname: 'db-2', address: '10.0.0.6' };
      await driver.addHosts('br100', [later]);
      await driver.removeHosts('br100', [HOSTS[1]!]);
      // A host taking the address dnsmasq still holds for HOSTS[0] reloads again, after this one.
      const successor = { mac: 'fa:16:3e:00:00:07', hostname: 'db-3', address: HOSTS[0]!.address };
      const colliding = driver.addHosts('br100', [successor]);
      await vi.advanceTimersByTimeAsync(0);
      expect(executor.commands).toHaveLength(1);
      release();
      await until(() => executor.commands.length > 1);
      await colliding;
      expect(executor.argvs()).toEqual([
        ['kill', '-HUP', String(pid)],
        ['kill', '-HUP', String(pid)],
      ]);
      // The second reload loaded everything known by then, HOSTS[1]'s removal included.
      expect(readFileSync(files.hosts, 'utf8').split('\n').filter(Boolean).sort()).toEqual(
        hostsFile([NEW, later, successor], 'novalocal').split('\n').filter(Boolean).sort(),
      );
      expect(hostsdirFiles()).toEqual([]);
      expect(await new DnsmasqDriver(executor, options(statePath)).ensure(NETWORK, [NEW, later, successor])).toBe('none');
    });

    it('reloads after a restart when the service died before a removal reached dnsmasq', async () => {
      await driver.ensure(NETWORK, HOSTS);
      const pid = await fakeDnsmasq(argvFor());
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      await driver.removeHosts('br100', [HOSTS[0]!]);
      await driver.addHosts('br100', [NEW]);
      executor.clear();
      const restarted = new DnsmasqDriver(executor, options(statePath));
      expect(await restarted.ensure(NETWORK, [HOSTS[1]!, NEW])).toBe('reloaded');
      expect(executor.argvs()).toEqual([['kill', '-HUP', String(pid)]]);
    });
  });

  it('release runs dhcp_release BRIDGE IP MAC', async () => {
    await driver.release('br100', '10.0.0.3', 'fa:16:3e:00:00:01');
    expect(executor.commands).toEqual([{ argv: ['dhcp_release', 'br100', '10.0.0.3', 'fa:16:3e:00:00:01'] }]);
  });

  it('release reports a missing dhcp_release as the real executor does', async () => {
    executor.on(['dhcp_release'], notInstalled);
    await expect(driver.release('br100', '10.0.0.3', 'fa:16:3e:00:00:01')).rejects.toThrow(
      'dhcp_release br100 10.0.0.3 fa:16:3e:00:00:01: could not start (ENOENT)',
    );
  });

  it.each(['br0;reboot', 'a'.repeat(16), ''])('rejects the bridge name %j before any file or command', async (bridge) => {
    await expect(driver.ensure({ ...NETWORK, bridge }, HOSTS)).rejects.toThrow(Invalid);
    await expect(driver.stop(bridge)).rejects.toThrow(Invalid);
    await expect(driver.release(bridge, '10.0.0.3', 'fa:16:3e:00:00:01')).rejects.toThrow(Invalid);
    expect(executor.commands).toEqual([]);
    expect(existsSync(join(statePath, 'networks'))).toBe(false);
  });
});
