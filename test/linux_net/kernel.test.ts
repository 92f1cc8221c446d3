/**
 * The drivers against the real kernel and the real tools, inside a network namespace
 * this file creates and always deletes: the rule spellings must be iptables-save's own
 * (or every sync would rewrite them), and a real dnsmasq must be recognised as running.
 * Nothing here touches the root namespace's interfaces or rules.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DnsmasqDriver, type DhcpNetwork } from '../../src/linux_net/dnsmasq.js';
import { processExecutor } from '../../src/linux_net/executor.js';
import { IptablesDriver } from '../../src/linux_net/firewall/iptables/driver.js';
import { parseSave, renderRestore, withWiring } from '../../src/linux_net/firewall/iptables/plan.js';
import { renderRules } from '../../src/linux_net/firewall/iptables/render.js';
import { LinkDriver } from '../../src/linux_net/links.js';
import { twoNetworks } from '../support/firewall.js';
import { deleteNamespace, kernelAvailable } from '../support/netns.js';

const kernel = kernelAvailable(['iptables', 'iptables-save', 'iptables-restore', 'dnsmasq']);
const NS = `nn-unit-${process.pid}`;

function inNs(...argv: string[]): string {
  return execFileSync('ip', ['netns', 'exec', NS, ...argv], { encoding: 'utf8' });
}

/** iptables-save without its timestamped comment lines. */
function save(): string {
  return inNs('iptables-save').split('\n').filter((line) => !line.startsWith('#')).join('\n');
}

const STATE = twoNetworks();

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

  it('writes rules in iptables-save spelling, keeps foreign rules and changes nothing the second time', async () => {
    // A Docker-like host: FORWARD policy DROP, a foreign chain, rules above and below ours.
    inNs('iptables', '-P', 'FORWARD', 'DROP');
    inNs('iptables', '-N', 'DOCKER-USER');
    inNs('iptables', '-A', 'DOCKER-USER', '-j', 'RETURN');
    inNs('iptables', '-A', 'FORWARD', '-j', 'DOCKER-USER');
    inNs('iptables', '-t', 'nat', '-A', 'POSTROUTING', '-s', '172.17.0.0/16', '!', '-o', 'docker0', '-j', 'MASQUERADE');
    const foreign = save();
    const driver = new IptablesDriver(executor);
    expect(await driver.sync(STATE)).toHaveLength(19);
    // The kernel prints our rules exactly as we render them: nothing left to change.
    expect(renderRestore(withWiring(renderRules(STATE)), parseSave(inNs('iptables-save'))).script).toBe('');
    const installed = save();
    expect(await driver.sync(STATE)).toEqual([]);
    expect(save()).toBe(installed);
    const forward = parseSave(installed).filter.get('FORWARD');
    expect(forward).toEqual(['-j nova-filter-top', '-j DOCKER-USER']);
    expect(parseSave(installed).nat.get('POSTROUTING')).toEqual([
      '-j nova-network-POSTROUTING', '-s 172.17.0.0/16 ! -o docker0 -j MASQUERADE', '-j nova-postrouting-bottom',
    ]);
    for (const line of foreign.split('\n').filter((text) => text.startsWith('-A'))) expect(installed).toContain(line);
    expect(installed).toContain(':FORWARD DROP');
  });

  it('applies a change to one chain, and the REDIRECT form of the metadata rule', async () => {
    const driver = new IptablesDriver(executor);
    await driver.sync(STATE);
    const local = { ...STATE, metadataHost: '127.0.0.1', routingSourceIp: '192.0.2.11' };
    expect(await driver.apply(local)).toEqual(['nat/nova-network-PREROUTING', 'nat/nova-network-POSTROUTING', 'nat/nova-network-snat']);
    expect(renderRestore(withWiring(renderRules(local)), parseSave(inNs('iptables-save'))).script).toBe('');
    expect(parseSave(inNs('iptables-save')).nat.get('nova-network-PREROUTING')?.[0]).toBe(
      '-d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j REDIRECT --to-ports 8775',
    );
    // Back, so the other tests start from STATE.
    await driver.apply(STATE);
    expect(renderRestore(withWiring(renderRules(STATE)), parseSave(inNs('iptables-save'))).script).toBe('');
  });

  it('makes a floating /24 chain for a new bucket and removes it with its last address', async () => {
    const driver = new IptablesDriver(executor);
    await driver.sync(STATE);
    const more = { ...STATE, floating: [...STATE.floating, { address: '198.51.100.7', fixed: '10.0.1.9', interface: 'eth0' }] };
    expect(await driver.apply(more)).toEqual([
      'nat/nova-network-PREROUTING', 'nat/nova-network-OUTPUT', 'nat/nova-network-float-snat', 'nat/nova-float-dnat-c63364', 'nat/nova-float-snat-0a0001',
    ]);
    const installed = parseSave(inNs('iptables-save'));
    expect(installed.nat.get('nova-float-dnat-c63364')).toEqual(['-d 198.51.100.7/32 -j DNAT --to-destination 10.0.1.9']);
    expect(installed.nat.get('nova-network-OUTPUT')).toContain('-d 198.51.100.0/24 -j nova-float-dnat-c63364');
    expect(renderRestore(withWiring(renderRules(more)), installed).script).toBe('');
    // The kernel's state read afresh (sync) agrees, and going back removes both chains.
    expect(await new IptablesDriver(executor).sync(STATE)).toEqual([
      'nat/nova-network-PREROUTING', 'nat/nova-network-OUTPUT', 'nat/nova-network-float-snat', 'nat/nova-float-dnat-c63364', 'nat/nova-float-snat-0a0001',
    ]);
    const after = parseSave(inNs('iptables-save'));
    expect([...after.nat.keys()].filter((chain) => chain.startsWith('nova-float-'))).toEqual(['nova-float-dnat-c00002', 'nova-float-snat-0a0000']);
    expect(renderRestore(withWiring(renderRules(STATE)), after).script).toBe('');
  });

  it('repairs a jump and a rule deleted by hand', async () => {
    inNs('iptables', '-D', 'FORWARD', '-j', 'nova-filter-top');
    inNs('iptables', '-t', 'nat', '-D', 'nova-network-snat', '-s', '10.0.0.0/24', '-o', 'eth0', '-j', 'SNAT', '--to-source', '192.0.2.10');
    const driver = new IptablesDriver(executor);
    expect(await driver.sync(STATE)).toEqual(['filter/FORWARD:-j nova-filter-top', 'nat/nova-network-snat']);
    expect(parseSave(inNs('iptables-save')).filter.get('FORWARD')).toEqual(['-j nova-filter-top', '-j DOCKER-USER']);
    expect(await driver.sync(STATE)).toEqual([]);
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
