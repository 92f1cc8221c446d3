/**
 * The drivers against the real kernel and the real tools, inside a network namespace
 * this file creates and always deletes: links are built and found right, and a real
 * dnsmasq must be recognised as running. (The firewall's: e2e/linux_net/firewall/.)
 * Nothing here touches the root namespace's interfaces or rules.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DnsmasqDriver, type DhcpNetwork } from '../../src/linux_net/dnsmasq.js';
import { processExecutor } from '../../src/linux_net/executor.js';
import { LinkDriver } from '../../src/linux_net/links.js';
import { deleteNamespace, kernelAvailable } from '../support/netns.js';

const kernel = kernelAvailable(['dnsmasq']);
const NS = `nn-unit-${process.pid}`;

function inNs(...argv: string[]): string {
  return execFileSync('ip', ['netns', 'exec', NS, ...argv], { encoding: 'utf8' });
}

describe.runIf(kernel)('linux_net drivers on the real kernel (own network namespace)', () => {
  const executor = processExecutor({ rootHelper: ['ip', 'netns', 'exec', NS], defaultTimeoutMs: 10_000 });
  let statePath = '';
  let dnsmasq: DnsmasqDriver | undefined;

  beforeAll(() => {
    execFileSync('ip', ['netns', 'add', NS]);
    inNs('ip', 'link', 'set', 'lo', 'up');
    statePath = mkdtempSync(join(tmpdir(), 'novanet-kernel-'));
    // dnsmasq re-reads its hosts file after dropping root.
    chmodSync(statePath, 0o755);
    dnsmasq = new DnsmasqDriver(executor, {
      statePath, domain: 'novalocal', leaseTime: 120, dnsServers: [], dhcpScript: '/bin/true', configFile: undefined,
    });
  });

  afterAll(() => {
    executor.close();
    // Also after a failure halfway: the dnsmasq this file started (it names our pid
    // file), then the namespace with everything in it, then the state files.
    const pid = dnsmasq?.runningPid(dnsmasq.files('br100'));
    if (pid !== undefined) process.kill(pid, 'SIGKILL');
    deleteNamespace(NS);
    if (statePath) rmSync(statePath, { recursive: true, force: true });
  });

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
      '10.0.0.1/24', '192.168.50.10/24',
    ]);
    expect(JSON.parse(inNs('ip', '-j', 'route', 'show', 'default'))).toMatchObject([{ dst: 'default', gateway: '192.168.50.1', dev: 'br100', metric: 100 }]);
    // A restart: the same calls find everything right and change nothing.
    expect(await links.ensureBridge('br100', { interface: 'nleth1', mtu: 1400 })).toEqual([]);
    expect(await links.ensureFirstAddress('br100', '10.0.0.1', 24)).toEqual([]);
    expect(await links.ensureForwarding()).toBe(true);
    expect(await links.ensureForwarding()).toBe(false);
  });

  it('runs a real dnsmasq: started, recognised, reloaded, restarted, stopped', async () => {
    const driver = dnsmasq!;
    const network: DhcpNetwork = {
      id: 1, bridge: 'br100', dhcpServer: '10.0.0.1', dhcpStart: '10.0.0.2', netmask: '255.255.255.0', gateway: '10.0.0.1', size: 256, mtu: null, dns: [],
    };
    const hosts = [{ mac: 'fa:16:3e:00:00:01', hostname: 'vm1', address: '10.0.0.3' }];
    const files = driver.files('br100');
    expect(await driver.ensure(network, hosts)).toBe('started');
    const pid = driver.runningPid(files);
    expect(pid).toBeGreaterThan(0);
    // dnsmasq keeps its argv as given: the running command line matches ours.
    expect(await driver.ensure(network, hosts)).toBe('none');
    expect(await driver.ensure(network, [...hosts, { mac: 'fa:16:3e:00:00:02', hostname: 'vm2', address: '10.0.0.4' }])).toBe('reloaded');
    expect(driver.runningPid(files)).toBe(pid);
    expect(await driver.ensure({ ...network, dhcpStart: '10.0.0.10' }, hosts)).toBe('restarted');
    const restarted = driver.runningPid(files);
    expect(restarted).toBeGreaterThan(0);
    expect(restarted).not.toBe(pid);
    expect(await driver.stop('br100')).toBe(true);
    expect(driver.runningPid(files)).toBeUndefined();
    expect(existsSync(files.pid)).toBe(false);
  });

  it('deletes the bridge', async () => {
    const links = new LinkDriver(executor);
    expect(await links.deleteBridge('br100')).toBe(true);
    expect(await links.show('br100')).toBeUndefined();
    expect(await links.deleteBridge('br100')).toBe(false);
  });
});
