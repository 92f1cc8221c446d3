import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { DhcpHost, DhcpNetwork, DnsmasqOptions } from '../../src/linux_net/dnsmasq/index.js';
import type { RecordingExecutor } from './recordingExecutor.js';

/** One FlatDHCP network on br100: what the dnsmasq unit tests serve. */
export const NETWORK: DhcpNetwork = {
  id: 1,
  bridge: 'br100',
  dhcpServer: '10.0.0.1',
  dhcpStart: '10.0.0.3',
  netmask: '255.255.255.0',
  gateway: '10.0.0.1',
  size: 256,
  mtu: null,
  dns: [],
  ipv6: undefined,
};

export const HOSTS: DhcpHost[] = [
  { mac: 'fa:16:3e:00:00:01', hostname: 'web-1', address: '10.0.0.3' },
  { mac: 'fa:16:3e:00:00:02', hostname: null, address: '10.0.0.4' },
];

export function dnsmasqOptions(statePath: string, overrides: Partial<DnsmasqOptions> = {}): DnsmasqOptions {
  return {
    statePath,
    domain: 'novalocal',
    leaseTime: 86400,
    dnsServers: ['8.8.8.8', '8.8.4.4'],
    dhcpScript: '/usr/local/bin/novanet-dhcpbridge',
    configFile: '/etc/novanet/novanet.conf',
    ...overrides,
  };
}

/**
 * Harmless processes that look like a running dnsmasq in /proc/PID/cmdline: node
 * idling, with `dnsmasq ARGS` as its script arguments. (Not `sh -c 'sleep 30'`: a
 * shell may exec sleep in its place, and the cmdline would be sleep's.)
 */
export class FakeDnsmasqs {
  private readonly children: ChildProcess[] = [];

  /** Starts one with the dnsmasq part of `argv` and writes its pid to `pidFile`. */
  async start(argv: string[], pidFile: string): Promise<number> {
    const dnsmasqPart = argv.slice(argv.indexOf('dnsmasq'));
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', ...dnsmasqPart], { stdio: 'ignore' });
    this.children.push(child);
    const pid = child.pid!;
    // Wait for the exec: until then /proc shows the forked parent's cmdline.
    for (let attempt = 0; attempt < 100 && !readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('dnsmasq'); attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    mkdirSync(dirname(pidFile), { recursive: true });
    writeFileSync(pidFile, `${pid}\n`);
    return pid;
  }

  /** `kill` really signals, but only the stand-ins started here; everything else is recorded only. */
  signalThrough(executor: RecordingExecutor): void {
    executor.on(['kill'], (spec) => {
      const pid = Number(spec.argv[2]);
      const signal = ({ '-TERM': 'SIGTERM', '-KILL': 'SIGKILL' } as const)[spec.argv[1] as '-TERM' | '-KILL'];
      if (signal && this.children.some((child) => child.pid === pid)) process.kill(pid, signal);
      return {};
    });
  }

  /** Ends every stand-in still running (after each test). */
  killAll(): void {
    for (const child of this.children) {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
    }
  }
}
