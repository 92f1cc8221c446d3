/**
 * The dnsmasq driver with a real dnsmasq, inside a network namespace this file
 * creates and always deletes: the running dnsmasq must be recognised as ours (its
 * /proc command line is the one we gave), so a second ensure leaves it alone.
 * Nothing here touches the root namespace's interfaces.
 */
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DhcpNetwork, DnsmasqDriver, runningPid } from '../../../../src/linux_net/dnsmasq/index.js';
import { kernelAvailable, useNamespace } from '../../../support/netns.js';

const kernel = kernelAvailable(['dnsmasq']);

describe.runIf(kernel)('DnsmasqDriver with a real dnsmasq (own network namespace)', () => {
  const { exec: inNs, executor } = useNamespace('dnsmasq');
  let statePath = '';
  let dnsmasq: DnsmasqDriver | undefined;

  beforeAll(() => {
    // The bridge dnsmasq binds to, with the DHCP server's address.
    inNs('ip', 'link', 'add', 'br100', 'type', 'bridge');
    inNs('ip', 'addr', 'add', '10.0.0.1/24', 'dev', 'br100');
    inNs('ip', 'link', 'set', 'br100', 'up');
    statePath = mkdtempSync(join(tmpdir(), 'novanet-kernel-'));
    // dnsmasq re-reads its hosts file after dropping root.
    chmodSync(statePath, 0o755);
    dnsmasq = new DnsmasqDriver(executor, {
      statePath,
      domain: 'novalocal',
      leaseTime: 120,
      dnsServers: [],
      dhcpScript: '/bin/true',
      configFile: undefined,
    });
  });

  afterAll(() => {
    // Also after a failure halfway: the dnsmasq this file started (it names our pid
    // file) and the state files; then useNamespace deletes the namespace.
    const pid = dnsmasq ? runningPid(dnsmasq.files('br100').pid) : undefined;
    if (pid !== undefined) process.kill(pid, 'SIGKILL');
    if (statePath) rmSync(statePath, { recursive: true, force: true });
  });

  it('runs a real dnsmasq: started, recognised, reloaded, restarted, stopped', async () => {
    const driver = dnsmasq!;
    const network: DhcpNetwork = {
      id: 1,
      bridge: 'br100',
      dhcpServer: '10.0.0.1',
      dhcpStart: '10.0.0.2',
      netmask: '255.255.255.0',
      gateway: '10.0.0.1',
      size: 256,
      mtu: null,
      dns: [],
      ipv6: undefined,
    };
    const hosts = [{ mac: 'fa:16:3e:00:00:01', hostname: 'vm1', address: '10.0.0.3' }];
    const files = driver.files('br100');
    expect(await driver.ensure(network, hosts)).toBe('started');
    const pid = runningPid(files.pid);
    expect(pid).toBeGreaterThan(0);
    // dnsmasq keeps its argv as given: the running command line matches ours.
    expect(await driver.ensure(network, hosts)).toBe('none');
    expect(await driver.ensure(network, [...hosts, { mac: 'fa:16:3e:00:00:02', hostname: 'vm2', address: '10.0.0.4' }])).toBe('reloaded');
    expect(runningPid(files.pid)).toBe(pid);
    expect(await driver.ensure({ ...network, dhcpStart: '10.0.0.10' }, hosts)).toBe('restarted');
    const restarted = runningPid(files.pid);
    expect(restarted).toBeGreaterThan(0);
    expect(restarted).not.toBe(pid);
    expect(await driver.stop('br100')).toBe(true);
    expect(runningPid(files.pid)).toBeUndefined();
    expect(existsSync(files.pid)).toBe(false);
  });
});
