/**
 * cluster: a network host and N compute hosts (namespaces on one underlay, each its own
 * novanet-network on one MariaDB), VLAN mode over VXLAN with M networks. Measures, per
 * N: a join (an allocate through a compute host's API for a network it does not hold
 * yet) until its VM's DHCP offer (bridge, VXLAN, flood entries on both sides, the
 * network host's dnsmasq); the flood entries a join adds over all hosts; a compute
 * host's cold start holding all M networks and its RSS; the queries per second idle
 * services send the database, per host.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { Lab, type LabService, REPO_ROOT, requireBuild, run } from '../tools/lab.js';
import { type Bench, type BenchEnv, markdownTable, millis, percentile, runIfMain } from './support/harness.js';

const HOST_COUNTS = (process.env.BENCH_CLUSTER_HOSTS ?? '2,4,8').split(',').map(Number);
const NETWORKS = Number(process.env.BENCH_CLUSTER_NETWORKS ?? '100');
const IDLE_MS = Number(process.env.BENCH_CLUSTER_IDLE_MS ?? '10000');
const NET_HOST = '172.31.0.10';
const VLAN_START = 100;

interface NetworkInfo {
  network_info: { address: string; devname: string; network: { bridge: string; subnets: { ips: { address: string }[] }[] } }[];
}

interface Figures {
  hosts: number;
  joinMs: number[];
  floodPerJoin: number[];
  coldStartMs: number;
  rss: Rss;
  /** The same host restarted with a young generation of 1 MB semi-spaces. */
  smallYoungRss: Rss;
  queriesPerHost: number;
}

/** A compute host's service: all it has resident, and its own (anonymous) part of it, not node's shared file pages. */
interface Rss {
  totalMb: number;
  privateMb: number;
}

/** The young generation's semi-space size a compute host may run with (NODE_OPTIONS in its unit). */
const SMALL_YOUNG = '--max-semi-space-size=1';

function rssOf(pid: number): Rss {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 'NaN');
  return { totalMb: kb('VmRSS') / 1024, privateMb: kb('RssAnon') / 1024 };
}

async function must(argv: string[]): Promise<string> {
  const result = await run(argv, { timeoutMs: 60_000 });
  if (result.code !== 0) throw new Error(`${argv.join(' ')}: ${result.stderr.trim()}`);
  return result.stdout;
}

async function call<T>(base: string, token: string, method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(`${base}/v2.1${path}`, {
    method,
    headers: { 'X-Auth-Token': token, 'Content-Type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return JSON.parse(text) as T;
}

/** Flood entries of vxlan<vni> in `ns` (0 when there is no such interface). */
async function floodEntries(lab: Lab, ns: string, vni: number): Promise<number> {
  const shown = await lab.exec(ns, ['bridge', '-j', 'fdb', 'show', 'dev', `vxlan${vni}`]);
  if (shown.code !== 0) return 0;
  return (JSON.parse(shown.stdout) as { mac: string }[]).filter((entry) => entry.mac === '00:00:00:00:00:00').length;
}

async function cell(env: BenchEnv, hosts: number): Promise<Figures> {
  const database = await env.scratch('mariadb', 'cluster');
  if (!database.socketUrl) throw new Error('cluster needs the private MariaDB server (unset NOVANET_BENCH_MYSQL_URL)');
  const lab = await Lab.create({ vms: 0, underlay: true, flatInterfaceAddress: `${NET_HOST}/16` });
  const services: LabService[] = [];
  try {
    const base = { network_manager: 'vlan', vlan_interface: 'eth1', vlan_transport: 'vxlan', reconcile_interval: '3600' };
    const netConfig = lab.writeConfig({ ...base, host: 'nethost', tunnel_ip: NET_HOST }, { database: database.socketUrl });
    const computeNs: string[] = [];
    const configs = [netConfig];
    for (let index = 1; index <= hosts; index++) {
      const address = `172.31.1.${index}`;
      const ns = await lab.addComputeHost(`c${index}`, `${address}/16`);
      computeNs.push(ns);
      configs.push(
        lab.writeConfig(
          { ...base, host: `compute${index}`, network_host: 'false', my_ip: address, tunnel_ip: address },
          { ns, name: `compute${index}`, database: database.socketUrl },
        ),
      );
    }
    const token = await lab.provision(
      netConfig,
      [
        [
          'network',
          'create',
          '--label=c',
          '--fixed_range_v4=10.128.0.0/16',
          `--num_networks=${NETWORKS}`,
          '--network_size=256',
          `--vlan_start=${VLAN_START}`,
        ],
      ],
      'ops',
    );
    for (const config of configs) services.push(await lab.startService(config));

    // Joins: project k takes network k (VLAN mode), on compute host k mod N, which does not hold it yet.
    const joinMs: number[] = [];
    const floodPerJoin: number[] = [];
    for (let k = 0; k < NETWORKS; k++) {
      const host = k % hosts;
      const vm = await lab.addVm(`j${k}`, computeNs[host]!, `pv${k}`);
      await lab.exec(vm.ns, ['ip', 'link', 'set', 'eth0', 'up']);
      const probe = lab.spawn(vm.ns, [process.execPath, join(REPO_ROOT, 'dist/bench/support/dhcpProbe.js')], { stdin: true });
      const lines = createInterface({ input: probe.stdout! });
      const next = (): Promise<string> => new Promise((resolve) => lines.once('line', resolve));
      if ((await next()) !== 'ready') throw new Error('DHCP probe did not start');
      const started = performance.now();
      const info = await call<NetworkInfo>(services[host + 1]!.api, token, 'POST', '/os-novanet/instances', {
        instance: { uuid: `20202020-0000-4000-8000-${k.toString(16).padStart(12, '0')}`, project_id: `p${k}`, host: `compute${host + 1}` },
      });
      const vif = info.network_info[0]!;
      // The hypervisor's part, at once: the tap under its devname, in the bridge (libvirt's type='bridge').
      await must(['ip', '-n', computeNs[host]!, 'link', 'set', `pv${k}`, 'name', vif.devname]);
      await must(['ip', '-n', computeNs[host]!, 'link', 'set', vif.devname, 'master', vif.network.bridge, 'up']);
      await must(['ip', '-n', vm.ns, 'link', 'set', 'eth0', 'address', vif.address]);
      await must(['ip', '-n', vm.ns, 'addr', 'add', '169.254.1.1/16', 'dev', 'eth0']);
      await must(['ip', '-n', vm.ns, 'route', 'add', 'default', 'dev', 'eth0']);
      const answer = next();
      probe.stdin!.write(`${vif.address}\n`);
      const result = JSON.parse(await answer) as { address: string | null };
      if (result.address !== vif.network.subnets[0]!.ips[0]!.address)
        throw new Error(`join ${k}: offered ${result.address}, not its fixed IP`);
      joinMs.push(performance.now() - started);
      probe.stdin!.end();
      const vni = VLAN_START + k;
      let flood = await floodEntries(lab, lab.netNs, vni);
      for (const ns of computeNs) flood += await floodEntries(lab, ns, vni);
      floodPerJoin.push(flood);
    }

    // Cold start: compute host 1 holding every network, its links gone, its service started again.
    for (let k = 0; k < NETWORKS; k++) {
      if (k % hosts === 0) continue;
      await call(services[1]!.api, token, 'POST', '/os-novanet/instances', {
        instance: { uuid: `21212121-0000-4000-8000-${k.toString(16).padStart(12, '0')}`, project_id: `p${k}`, host: 'compute1' },
      });
    }
    await services[1]!.stop();
    for (let k = 0; k < NETWORKS; k++) {
      await lab.exec(computeNs[0]!, ['ip', 'link', 'del', `br${VLAN_START + k}`]);
      await lab.exec(computeNs[0]!, ['ip', 'link', 'del', `vxlan${VLAN_START + k}`]);
    }
    const coldStarted = performance.now();
    services[1] = await lab.startService(configs[1]!);
    const coldStartMs = performance.now() - coldStarted;
    const bridges = (await lab.exec(computeNs[0]!, ['ip', '-o', 'link', 'show', 'type', 'bridge'])).stdout
      .split('\n')
      .filter(Boolean).length;
    if (bridges !== NETWORKS) throw new Error(`compute1 has ${bridges} bridges after its cold start, not ${NETWORKS}`);
    const rss = rssOf(services[1]!.child.pid!);
    // Again with a small young generation (a warm restart: its links are in place).
    await services[1]!.stop();
    services[1] = await lab.startService(configs[1]!, undefined, [SMALL_YOUNG]);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const smallYoungRss = rssOf(services[1]!.child.pid!);

    // Idle: what every service's polls and heartbeats ask of the database.
    const questions = async () => {
      const out = await must([
        'mariadb',
        '--socket',
        new URL(database.socketUrl!).searchParams.get('unix_socket')!,
        '-N',
        '-e',
        "SHOW GLOBAL STATUS LIKE 'Questions'",
      ]);
      return Number(out.trim().split(/\s+/)[1]);
    };
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const before = await questions();
    await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
    const after = await questions();
    // The two SHOW queries are this bench's own.
    const queriesPerHost = (after - before - 2) / (IDLE_MS / 1000) / (hosts + 1);
    return { hosts, joinMs, floodPerJoin, coldStartMs, rss, smallYoungRss, queriesPerHost };
  } finally {
    for (const service of services) await service.stop();
    await lab.destroy();
    await database.drop();
  }
}

export const clusterBench: Bench = async (env) => {
  if (process.getuid?.() !== 0) return '## cluster\n\nskipped: needs root (a lab of network namespaces)';
  requireBuild();
  const figures: Figures[] = [];
  for (const hosts of HOST_COUNTS) {
    env.log(`cluster: ${hosts} compute hosts, ${NETWORKS} VXLAN networks`);
    figures.push(await cell(env, hosts));
  }
  const rows = figures.map((figure) => {
    const sorted = [...figure.joinMs].sort((a, b) => a - b);
    return [
      String(figure.hosts),
      millis(percentile(sorted, 50)),
      millis(percentile(sorted, 95)),
      `${Math.max(...figure.floodPerJoin)}`,
      millis(figure.coldStartMs),
      `${figure.rss.totalMb.toFixed(0)} MB (${figure.rss.privateMb.toFixed(0)} MB)`,
      `${figure.smallYoungRss.totalMb.toFixed(0)} MB (${figure.smallYoungRss.privateMb.toFixed(0)} MB)`,
      figure.queriesPerHost.toFixed(2),
    ];
  });
  return [
    `## cluster (${NETWORKS} VXLAN networks, MariaDB)`,
    '',
    markdownTable(
      [
        'compute hosts',
        'join → offer p50',
        'join → offer p95',
        'flood entries a join adds (max)',
        `cold start, ${NETWORKS} networks`,
        'compute RSS (private)',
        `compute RSS with ${SMALL_YOUNG}`,
        'idle queries/s per host',
      ],
      rows,
    ),
  ].join('\n');
};

runIfMain(import.meta.url, clusterBench);
