/**
 * The real novanet-network binary on the real kernel: instances allocated through
 * the API get exactly those addresses by DHCP, restarts change no rule and drop no
 * packet of a VM talking to the outside, and the scheduled reconcile repairs drift.
 */
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, eventually, Lab, type LabService, requireBuild, run } from '../../tools/lab.js';

const INSTANCES = ['bbbbbbbb-0000-4000-8000-000000000001', 'bbbbbbbb-0000-4000-8000-000000000002'];
const ECHO_PORT = 9001;

describe('novanet-network in network namespaces', () => {
  let lab: Lab;
  let configFile: string;
  let base: string;
  let token: string;
  let service: LabService | undefined;
  let log = '';
  const addresses: string[] = [];

  async function manage(args: string[]): Promise<string> {
    const result = await run([process.execPath, BIN.manage, '--config-file', configFile, ...args]);
    expect(result.code, result.stderr).toBe(0);
    return result.stdout;
  }

  async function start(): Promise<void> {
    service = await lab.startService(configFile, (chunk) => {
      log += chunk;
    });
    base = service.api;
  }

  async function stop(): Promise<void> {
    await service?.stop();
  }

  function api(method: string, path: string, body?: unknown): Promise<Response> {
    return fetch(`${base}/v2.1${path}`, {
      method,
      headers: { 'X-Auth-Token': token, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  }

  beforeAll(async () => {
    requireBuild();
    lab = await Lab.create({ vms: 2, flatInterfaceAddress: '172.31.0.10/24' });
    configFile = lab.writeConfig({ reconcile_interval: '2' });
    await manage(['db', 'sync']);
    await manage(['network', 'create', '--label=private', '--fixed_range_v4=10.0.0.0/24']);
    token = (await manage(['token', 'create', '--project_id=p1', '--role=admin'])).trim();
    await lab.startEcho(ECHO_PORT);
    await start();
  }, 120_000);

  afterAll(async () => {
    await stop();
    await lab?.destroy();
  });

  it('gives each VM by DHCP exactly the address the API returned', async () => {
    for (const [index, vm] of lab.vms.entries()) {
      const response = await api('POST', '/os-novanet/instances', {
        instance: { uuid: INSTANCES[index], project_id: 'p1', host: 'compute1', hostname: vm.name },
      });
      expect(response.status).toBe(200);
      const info = (await response.json()) as {
        network_info: { address: string; network: { bridge: string; subnets: { ips: { address: string }[] }[] } }[];
      };
      const vif = info.network_info[0]!;
      addresses.push(vif.network.subnets[0]!.ips[0]!.address);
      await lab.plug(vm, vif.network.bridge, vif.address);
      const lease = await lab.dhcp(vm);
      expect(lease.address, lease.output).toBe(addresses[index]);
    }
    expect(await lab.sourceSeenOutside(lab.vms[0]!, ECHO_PORT)).toBe(lab.publicAddress);
  });

  it('reports health, the reconcile and the fixed IPs in /healthz and /metrics', async () => {
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({
      status: 'ok',
      database: 'ok',
      reconcile: { kind: expect.stringMatching(/^(full|partial)$/), error_count: 0 },
    });
    // Gauges are refreshed after each full reconcile (every 2 s here).
    const metrics = await eventually(async () => {
      const text = await (await fetch(`${base}/metrics`)).text();
      return /state="used"[^}]*\} 2$/m.test(text) ? text : undefined;
    }, 'the fixed IP gauges to count both VMs');
    expect(metrics).toMatch(/^novanet_reconciles_total\{kind="full"\} [1-9]/m);
    // 256 addresses: network, gateway, broadcast reserved; two held by the VMs.
    expect(metrics).toMatch(/^novanet_fixed_ips\{[^}]*network="10\.0\.0\.0\/24"[^}]*state="used"[^}]*\} 2$/m);
    expect(metrics).toMatch(/^novanet_fixed_ips\{[^}]*network="10\.0\.0\.0\/24"[^}]*state="free"[^}]*\} 251$/m);
  });

  it('restarts three times without changing a rule and without losing a packet of a VM pinging the outside', async () => {
    const before = await lab.ruleset();
    // 0.05 s apart for the length of three restarts; ping's own count bounds it.
    const pinging = lab.exec(lab.vms[0]!.ns, ['ping', '-i', '0.05', '-c', '120', '-W', '1', lab.outsideAddress], { timeoutMs: 60_000 });
    for (let restart = 0; restart < 3; restart++) {
      await stop();
      await start();
      expect(await lab.ruleset()).toBe(before);
    }
    const result = await pinging;
    expect(result.stdout).toMatch(/120 packets transmitted, 120 received, 0% packet loss/);
  });

  it('repairs a hand-deleted rule and address at the next scheduled reconcile', async () => {
    const before = await lab.ruleset();
    expect((await lab.exec(lab.netNs, ['iptables', '-t', 'nat', '-F', 'nova-network-snat'])).code).toBe(0);
    expect((await lab.exec(lab.netNs, ['ip', 'addr', 'del', '10.0.0.1/24', 'dev', 'br100'])).code).toBe(0);
    const repaired = /"event":"reconcile.done","kind":"full"[^\n]*"rules nat\/nova-network-snat"/;
    // The rules are back before that reconcile ends (it still waits for dnsmasq) and logs.
    await eventually(
      async () => ((await lab.ruleset()) === before && repaired.test(log) ? true : undefined),
      'the scheduled reconcile to restore the rules',
    );
    expect((await lab.exec(lab.netNs, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'br100'])).stdout).toContain('10.0.0.1/24');
    expect(log).toMatch(repaired);
  });

  it('frees a deallocated address once dnsmasq reports the release', async () => {
    const response = await api('DELETE', `/os-novanet/instances/${INSTANCES[1]}`);
    expect(response.status).toBe(204);
    await eventually(async () => {
      const listed = await manage(['fixed', 'list']);
      const line = listed.split('\n').find((entry) => entry.includes(` ${addresses[1]} `));
      return line && /None\s+None$/.test(line) ? true : undefined;
    }, `${addresses[1]} to be released and freed`);
  });

  it('tears a network down on this host within seconds of novanet-manage network delete', async () => {
    expect((await api('DELETE', `/os-novanet/instances/${INSTANCES[0]}`)).status).toBe(204);
    // The held address keeps the network in use until dnsmasq reports its lease released.
    await eventually(
      async () => {
        const result = await run([
          process.execPath,
          BIN.manage,
          '--config-file',
          configFile,
          'network',
          'delete',
          '--fixed_range=10.0.0.0/24',
        ]);
        return result.code === 0 ? true : undefined;
      },
      'the network to be deletable',
      15_000,
    );
    await eventually(async () => {
      const rules = await lab.ruleset();
      const addresses = (await lab.exec(lab.netNs, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'br100'])).stdout;
      const dnsmasqRunning = existsSync(`${lab.dir}/state/networks/nova-br100.pid`);
      return !rules.includes('10.0.0.0/24') && !addresses.includes('10.0.0.1/') && !dnsmasqRunning ? true : undefined;
    }, "the network's rules, gateway address and dnsmasq to be gone");
    // The bridge stays: it carries the host's own address, moved from flat_interface.
    expect((await lab.exec(lab.netNs, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'br100'])).stdout).toContain('172.31.0.10/24');
  });
});
