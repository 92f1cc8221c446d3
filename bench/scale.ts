/**
 * One network host at scale, on the real kernel inside a lab namespace, with the real
 * `novanet-network` process: 10,000 FlatDHCP instances and 5,000 associated floating
 * IPs. Measured per database and firewall backend: a cold start to a fully reconciled
 * host (bridge, every rule, dnsmasq with every host, every floating address), a warm
 * restart, one more allocation until dnsmasq offers its address, one more floating
 * association until it answers a ping from outside, the service's memory, and
 * allocate + deallocate throughput through the API with 64 concurrent clients.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { Pool } from 'undici';
import { TokenService } from '../src/auth/tokens.js';
import { type Database, openDatabase } from '../src/db/connection.js';
import * as fixedIps from '../src/db/fixedIps.js';
import * as floatingIps from '../src/db/floatingIps.js';
import { Lab, type LabService, type LabVm, REPO_ROOT } from '../tools/lab.js';
import {
  type Backend,
  type BenchEnv,
  benchConfig,
  benchManager,
  instanceUuid,
  markdownTable,
  millis,
  percentile,
  runIfMain,
  seconds,
} from './support/harness.js';

const INSTANCES = Number(process.env.BENCH_SCALE_INSTANCES ?? 10_000);
const FLOATING = Number(process.env.BENCH_SCALE_FLOATING ?? 5_000);
const DATABASES = (process.env.BENCH_SCALE_DATABASES ?? 'sqlite,mariadb').split(',') as Backend[];
const FIREWALLS = (process.env.BENCH_SCALE_FIREWALLS ?? 'iptables,nftables').split(',');
/** Single allocations and associations timed per cell. */
const SAMPLES = Number(process.env.BENCH_SCALE_SAMPLES ?? 20);
const CLIENTS = 64;
/** Bounds of the throughput cell: time, and allocate + deallocate pairs. */
const CELL_MS = Number(process.env.BENCH_SCALE_CELL_MS ?? 10_000);
const CELL_PAIRS = 20_000;
const SETUP_CALLERS = 64;

const PROJECT = 'bench';
/** A /16: room for the standing instances and every address the throughput run holds until disassociated. */
const FIXED_RANGE = '10.0.0.0/16';
const FLOATING_RANGE = '198.18.0.0/18';
const BRIDGE = 'br100';
const HOST = 'nethost';
/** Instance numbers: the standing ones, then the samples, then the throughput run's. */
const SAMPLE_BASE = 1_000_000;
const CELL_BASE = 2_000_000;

interface Figures {
  database: Backend;
  firewall: string;
  coldMs: number;
  coldReconcileMs: number;
  warmMs: number;
  warmChanges: number;
  rssMb: number;
  peakRssMb: number;
  allocate: { apiMs: number[]; dhcpMs: number[]; totalMs: number[] };
  associate: { liveMs: number[]; apiMs: number[]; disassociateMs: number[] };
  throughput: { pairs: number; perSecond: number; p50: number; p99: number; errors: number };
  /** CPU time per API call during the throughput run, by process (`database`: the MariaDB server this run started). */
  cpuMsPerCall: { service: number; dnsmasq: number; database: number | undefined; client: number };
}

/** The database of the network host: the network, its instances, the floating IPs, the first FLOATING associated. */
async function populate(url: string): Promise<void> {
  const db = openDatabase(url);
  try {
    const config = benchConfig('flatdhcp', { NOVANET_HOST: HOST, NOVANET_QUOTA_FLOATING_IPS: '-1' });
    const setup = benchManager(db, 'flatdhcp', { config });
    await setup.networks.create({ label: 'bench', fixedRangeV4: FIXED_RANGE, networkSize: 2 ** 16, bridge: BRIDGE });
    await setup.floating.createRange(FLOATING_RANGE);
    let next = 0;
    await Promise.all(
      Array.from({ length: SETUP_CALLERS }, async () => {
        while (next < INSTANCES) {
          const index = next++;
          await setup.allocation.allocate({
            instanceUuid: instanceUuid(index),
            projectId: PROJECT,
            host: 'compute1',
            hostname: `vm${index}`,
          });
        }
      }),
    );
    const fixedOf = new Map((await fixedIps.listFixedIps(db.knex, { associated: true })).map((fixed) => [fixed.instanceUuid, fixed.id]));
    const now = new Date();
    await db.knex.transaction(async (trx) => {
      for (let index = 0; index < FLOATING; index++) {
        const floating = await floatingIps.claimFloatingIp(trx, config.default_floating_pool, PROJECT, false, now);
        await floatingIps.associate(trx, floating.id, fixedOf.get(instanceUuid(index))!, HOST, now);
      }
    });
  } finally {
    await db.close();
  }
}

async function adminToken(url: string): Promise<string> {
  const db: Database = openDatabase(url);
  try {
    return (await new TokenService({ db }).create(PROJECT, 'admin')).token;
  } finally {
    await db.close();
  }
}

/**
 * A keep-alive HTTP client of the service's API. undici's pool, not node:http: it spends
 * about half the CPU per call, and the client shares the service's two cores here
 * (compute hosts call from their own machines).
 */
class Client {
  private readonly pool: Pool;
  constructor(
    base: string,
    private readonly token: string,
  ) {
    this.pool = new Pool(base, { connections: CLIENTS, pipelining: 1 });
  }

  async call<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const answer = await this.pool.request({
      method,
      path: `/v2.1${path}`,
      body: payload,
      headers: { 'x-auth-token': this.token, ...(payload === undefined ? {} : { 'content-type': 'application/json' }) },
    });
    const text = await answer.body.text();
    return { status: answer.statusCode, body: (text === '' ? undefined : JSON.parse(text)) as T };
  }

  async must<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<T> {
    const answer = await this.call<T>(method, path, body);
    if (answer.status >= 300) throw new Error(`${method} ${path}: ${answer.status} ${JSON.stringify(answer.body)}`);
    return answer.body;
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}

interface Allocated {
  network_info: { address: string; network: { subnets: { ips: { address: string }[] }[] } }[];
}

function allocateBody(index: number) {
  return { instance: { uuid: instanceUuid(index), project_id: PROJECT, host: 'compute1', hostname: `vm${index}` } };
}

/** Starts the service and waits for it to be up; the time, and its first full reconcile's report. */
async function startTimed(
  lab: Lab,
  configFile: string,
): Promise<{ service: LabService; ms: number; report: { durationMs: number; changes: string[]; errors: string[] } }> {
  let log = '';
  const started = performance.now();
  const service = await lab.startService(configFile, (chunk) => (log += chunk));
  const ms = performance.now() - started;
  const line = log.split('\n').find((entry) => entry.includes('"event":"reconcile.') && entry.includes('"kind":"full"'));
  if (!line) throw new Error(`no full reconcile logged before service.started:\n${log.slice(0, 2000)}`);
  const report = JSON.parse(line) as { durationMs: number; changes: string[]; errors: string[] };
  if (report.errors.length > 0) throw new Error(`first reconcile had errors: ${report.errors.slice(0, 5).join('; ')}`);
  return { service, ms, report };
}

/** User + system CPU time of a process so far, in seconds (/proc/PID/stat, in clock ticks of 1/100 s). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function memoryMb(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN) / 1024;
  return { rss: field('VmRSS'), peak: field('VmHWM') };
}

/** Throws unless the network host carries every floating address, every DHCP host and a running dnsmasq. */
async function checkKernel(lab: Lab, stateDir: string, instances: number): Promise<void> {
  const addresses = await lab.exec(lab.netNs, ['ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0']);
  const bound = addresses.stdout.split('\n').filter((line) => line.includes('/32')).length;
  if (bound !== FLOATING) throw new Error(`${bound} floating addresses bound, not ${FLOATING}`);
  const hosts = readFileSync(join(stateDir, 'networks', `nova-${BRIDGE}.hosts`), 'utf8')
    .split('\n')
    .filter(Boolean).length;
  if (hosts < instances) throw new Error(`dnsmasq's hosts file lists ${hosts} hosts, not ${instances}`);
}

/** One more allocation, then DISCOVERs from a VM with its MAC until dnsmasq offers its address. */
async function timeAllocations(lab: Lab, vm: LabVm, client: Client, figures: Figures): Promise<string> {
  await lab.plug(vm, BRIDGE, '02:00:00:00:00:01');
  // The probe broadcasts from the VM before it has a lease.
  await lab.exec(vm.ns, ['ip', 'addr', 'add', '169.254.1.1/16', 'dev', 'eth0']);
  await lab.exec(vm.ns, ['ip', 'route', 'add', 'default', 'dev', 'eth0']);
  const probe = lab.spawn(vm.ns, [process.execPath, join(REPO_ROOT, 'dist/bench/support/dhcpProbe.js')], { stdin: true });
  const lines = createInterface({ input: probe.stdout! });
  const next = (): Promise<string> => new Promise((resolve) => lines.once('line', resolve));
  if ((await next()) !== 'ready') throw new Error('DHCP probe did not start');
  let last = '';
  for (let sample = 0; sample < SAMPLES; sample++) {
    const started = performance.now();
    const info = await client.must<Allocated>('POST', '/os-novanet/instances', allocateBody(SAMPLE_BASE + sample));
    const apiMs = performance.now() - started;
    const vif = info.network_info[0]!;
    const answer = next();
    probe.stdin!.write(`${vif.address}\n`);
    const result = JSON.parse(await answer) as { address: string | null; ms: number | null };
    if (result.address !== vif.network.subnets[0]!.ips[0]!.address)
      throw new Error(`dnsmasq offered ${result.address} to ${vif.address}, not its fixed IP`);
    figures.allocate.apiMs.push(apiMs);
    figures.allocate.dhcpMs.push(result.ms!);
    figures.allocate.totalMs.push(apiMs + result.ms!);
    last = vif.address;
  }
  probe.stdin!.end();
  // The VM takes the last sample's identity and a real lease, for the floating IP samples.
  await lab.exec(vm.ns, ['ip', 'addr', 'flush', 'dev', 'eth0']);
  await lab.exec(vm.ns, ['ip', 'link', 'set', 'eth0', 'address', last]);
  const lease = await lab.dhcp(vm);
  if (lease.code !== 0 || lease.address === '') throw new Error(`the sample VM got no lease: ${lease.output}`);
  return instanceUuid(SAMPLE_BASE + SAMPLES - 1);
}

/**
 * Pings probing one association. iputils ping sends at most every 10 ms while its
 * echoes go unanswered (it sleeps a scheduler tick), whatever its -i: one ping alone
 * would add 0–10 ms to each sample. Several, started one after another, probe every
 * few milliseconds between them.
 */
const PINGS = 5;

/**
 * One more association, probed from outside until the first reply from the VM. The
 * network host itself answers for a bound address (TTL 64); the VM's replies are
 * forwarded by it (TTL 63).
 */
async function timeAssociations(lab: Lab, instance: string, client: Client, figures: Figures): Promise<void> {
  for (let sample = 0; sample < SAMPLES; sample++) {
    const { floating_ip: floating } = await client.must<{ floating_ip: { id: string; ip: string } }>('POST', '/os-floating-ips', {
      pool: 'nova',
    });
    const pings = Array.from({ length: PINGS }, () =>
      lab.spawn(lab.outsideNs, ['stdbuf', '-oL', 'ping', '-n', '-D', '-i', '0.002', '-w', '10', floating.ip]),
    );
    try {
      const { running, replied } = firstReply(pings);
      await running;
      await new Promise((resolve) => setTimeout(resolve, 20));
      const startedAt = Date.now();
      const started = performance.now();
      await client.must('POST', `/servers/${instance}/action`, { addFloatingIp: { address: floating.ip } });
      figures.associate.apiMs.push(performance.now() - started);
      const reply = await replied;
      if (reply === undefined) throw new Error(`floating ${floating.ip} never answered`);
      figures.associate.liveMs.push(reply - startedAt);
    } finally {
      for (const ping of pings) ping.kill('SIGKILL');
    }
    const removing = performance.now();
    await client.must('POST', `/servers/${instance}/action`, { removeFloatingIp: { address: floating.ip } });
    figures.associate.disassociateMs.push(performance.now() - removing);
    await client.must('DELETE', `/os-floating-ips/${floating.id}`);
  }
}

/**
 * `running`: every ping has started (printed its header line). `replied`: the time of
 * the first reply forwarded from the VM, by any of them; undefined once all have ended
 * without one.
 */
function firstReply(pings: ChildProcess[]): { running: Promise<unknown>; replied: Promise<number | undefined> } {
  const started: Promise<void>[] = [];
  const replied = new Promise<number | undefined>((resolve) => {
    let ended = 0;
    for (const ping of pings) {
      started.push(
        new Promise((ready) => {
          // Line-buffered (stdbuf): a pipe would otherwise hold the replies until ping exits.
          createInterface({ input: ping.stdout! })
            .on('line', (line) => {
              if (line.startsWith('PING ')) ready();
              const stamp = /^\[(\d+\.\d+)\] \d+ bytes from .* ttl=63 /.exec(line);
              if (stamp) resolve(Number(stamp[1]) * 1000);
            })
            .on('close', () => {
              ready();
              if (++ended === pings.length) resolve(undefined);
            });
        }),
      );
    }
  });
  return { running: Promise.all(started), replied };
}

/** CLIENTS concurrent callers, each allocating a new instance and deallocating it, bounded by CELL_MS and CELL_PAIRS. */
async function timeThroughput(client: Client, figures: Figures): Promise<void> {
  const latencies: number[] = [];
  let next = 0;
  let errors = 0;
  let firstError = '';
  const started = performance.now();
  const deadline = started + CELL_MS;
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (performance.now() < deadline && next < CELL_PAIRS) {
        const index = CELL_BASE + next++;
        for (const [method, path, body] of [
          ['POST', '/os-novanet/instances', allocateBody(index)],
          ['DELETE', `/os-novanet/instances/${instanceUuid(index)}`, undefined],
        ] as const) {
          const callStarted = performance.now();
          const answer = await client.call(method, path, body);
          latencies.push(performance.now() - callStarted);
          if (answer.status >= 300) {
            errors++;
            firstError ||= `${method} ${path}: ${answer.status} ${JSON.stringify(answer.body)}`;
          }
        }
      }
    }),
  );
  const elapsed = performance.now() - started;
  if (errors > 0) throw new Error(`${errors} API calls failed in the throughput run, e.g. ${firstError}`);
  latencies.sort((a, b) => a - b);
  figures.throughput = {
    pairs: next,
    perSecond: (latencies.length * 1000) / elapsed,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    errors,
  };
}

/** `serverPid`: the MariaDB server's process, whose CPU time is counted too. */
async function measure(env: BenchEnv, database: Backend, url: string, firewall: string, serverPid: number | undefined): Promise<Figures> {
  const figures: Figures = {
    database,
    firewall,
    coldMs: 0,
    coldReconcileMs: 0,
    warmMs: 0,
    warmChanges: 0,
    rssMb: 0,
    peakRssMb: 0,
    allocate: { apiMs: [], dhcpMs: [], totalMs: [] },
    associate: { liveMs: [], apiMs: [], disassociateMs: [] },
    throughput: { pairs: 0, perSecond: 0, p50: 0, p99: 0, errors: 0 },
    cpuMsPerCall: { service: 0, dnsmasq: 0, database: undefined, client: 0 },
  };
  const lab = await Lab.create({ vms: 1, flatInterfaceAddress: '172.31.0.10/24' });
  let service: LabService | undefined;
  let client: Client | undefined;
  try {
    await lab.exec(lab.outsideNs, ['ip', 'route', 'add', FLOATING_RANGE, 'via', lab.publicAddress]);
    // An address not yet associated is dropped silently: ping gives up at its first ICMP error.
    await lab.exec(lab.netNs, ['ip', 'route', 'add', 'blackhole', FLOATING_RANGE]);
    const configFile = lab.writeConfig(
      { host: HOST, firewall_backend: firewall, quota_floating_ips: '-1', dhcp_lease_time: '3600' },
      { database: url },
    );
    const stateDir = join(lab.dir, 'state');
    env.log(`${database}/${firewall}: cold start`);
    const cold = await startTimed(lab, configFile);
    service = cold.service;
    figures.coldMs = cold.ms;
    figures.coldReconcileMs = cold.report.durationMs;
    env.log(`${database}/${firewall}: cold start ${seconds(cold.ms)}, its reconcile ${seconds(cold.report.durationMs)}`);
    await checkKernel(lab, stateDir, INSTANCES);
    const afterStart = memoryMb(service.child.pid!);
    await service.stop();
    env.log(`${database}/${firewall}: warm restart`);
    const warm = await startTimed(lab, configFile);
    service = warm.service;
    figures.warmMs = warm.ms;
    figures.warmChanges = warm.report.changes.length;
    env.log(`${database}/${firewall}: warm restart ${seconds(warm.ms)}, ${warm.report.changes.length} changes`);
    client = new Client(service.api, await adminToken(url));
    env.log(`${database}/${firewall}: single allocations and associations`);
    const instance = await timeAllocations(lab, lab.vms[0]!, client, figures);
    await timeAssociations(lab, instance, client, figures);
    env.log(`${database}/${firewall}: ${CLIENTS} clients allocating and deallocating`);
    const dnsmasqPid = Number(readFileSync(join(stateDir, 'networks', `nova-${BRIDGE}.pid`), 'utf8').trim());
    const cpuBefore = {
      service: cpuSeconds(service.child.pid!),
      dnsmasq: cpuSeconds(dnsmasqPid),
      database: serverPid === undefined ? 0 : cpuSeconds(serverPid),
      client: process.cpuUsage(),
    };
    await timeThroughput(client, figures);
    const calls = figures.throughput.pairs * 2;
    const clientUsage = process.cpuUsage(cpuBefore.client);
    figures.cpuMsPerCall = {
      service: ((cpuSeconds(service.child.pid!) - cpuBefore.service) * 1000) / calls,
      dnsmasq: ((cpuSeconds(dnsmasqPid) - cpuBefore.dnsmasq) * 1000) / calls,
      database: serverPid === undefined ? undefined : ((cpuSeconds(serverPid) - cpuBefore.database) * 1000) / calls,
      client: (clientUsage.user + clientUsage.system) / 1000 / calls,
    };
    await checkKernel(lab, stateDir, INSTANCES);
    const memory = memoryMb(service.child.pid!);
    figures.rssMb = Math.max(afterStart.rss, memory.rss);
    figures.peakRssMb = Math.max(afterStart.peak, memory.peak);
  } finally {
    await client?.close();
    await service?.stop();
    await lab.destroy();
  }
  return figures;
}

const p50 = (values: number[]) =>
  percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
const p95 = (values: number[]) =>
  percentile(
    [...values].sort((a, b) => a - b),
    95,
  );
const pair = (values: number[]) => `${millis(p50(values))} / ${millis(p95(values))}`;

function report(all: Figures[]): string {
  const rows = all.map((figures) => [
    `${figures.database}, ${figures.firewall}`,
    seconds(figures.coldMs),
    seconds(figures.coldReconcileMs),
    `${seconds(figures.warmMs)} (${figures.warmChanges})`,
    pair(figures.allocate.totalMs),
    pair(figures.allocate.dhcpMs),
    pair(figures.associate.liveMs),
    pair(figures.associate.disassociateMs),
    `${figures.rssMb.toFixed(0)} / ${figures.peakRssMb.toFixed(0)} MB`,
    `${figures.throughput.perSecond.toFixed(0)}/s`,
    `${millis(figures.throughput.p50)} / ${millis(figures.throughput.p99)}`,
    [figures.cpuMsPerCall.service, figures.cpuMsPerCall.dnsmasq, figures.cpuMsPerCall.database, figures.cpuMsPerCall.client]
      .map((ms) => (ms === undefined ? '–' : millis(ms)))
      .join(' / '),
  ]);
  return [
    `### Scale: ${INSTANCES.toLocaleString('en')} instances, ${FLOATING.toLocaleString('en')} associated floating IPs, one network host`,
    '',
    markdownTable(
      [
        'database, firewall',
        'cold start',
        'its reconcile',
        'warm restart (changes)',
        'allocate → DHCP offer p50/p95',
        'of which DHCP',
        'associate → ping p50/p95',
        'disassociate p50/p95',
        'RSS / peak',
        `API calls/s (allocate, deallocate; ${CLIENTS} clients)`,
        'per call p50 / p99',
        'CPU per call: service / dnsmasq / MariaDB / client',
      ],
      rows,
    ),
    '',
    `Cold start: spawn of novanet-network on an empty namespace until service.started (after its first full reconcile). ` +
      `Allocate → DHCP offer: from the API call until dnsmasq offers the address to a DISCOVER with the new MAC. ` +
      `Associate → ping: from the addFloatingIp call until the VM's first reply to pings from outside (${PINGS} pings, a few ms apart; the network host's own replies for the bound address do not count). ` +
      `CPU per call: CPU time of each process during the throughput run over the calls answered (SQLite runs inside the service; all share the same 2 cores). ` +
      `Goals: cold reconcile < 3 s, allocation served / association live < 50 ms, RSS < 200 MB, ≥ 1,000 API calls/s on MariaDB with p99 < 100 ms.`,
  ].join('\n');
}

export async function scaleBench(env: BenchEnv): Promise<string> {
  if (process.getuid?.() !== 0) return 'scale: skipped (needs root for its network namespaces)';
  const all: Figures[] = [];
  for (const database of DATABASES) {
    const scratch = await env.scratch(database, 'scale');
    try {
      env.log(`${database}: ${INSTANCES} instances and ${FLOATING} floating IPs`);
      const started = performance.now();
      await populate(scratch.url);
      env.log(`${database}: populated in ${seconds(performance.now() - started)}`);
      for (const firewall of FIREWALLS) {
        // Each cell starts from the populated rows: the previous cell's samples are gone.
        // The service's dnsmasq runs novanet-dhcpbridge inside the lab's namespace, where
        // 127.0.0.1 is not this machine's: MariaDB is reached over its unix socket there.
        if (database === 'mariadb' && !scratch.socketUrl)
          throw new Error('scale on MariaDB needs the benchmark-started server (its unix socket); unset NOVANET_BENCH_MYSQL_URL');
        all.push(await measure(env, database, scratch.socketUrl ?? scratch.url, firewall, scratch.serverPid));
        await cleanSamples(scratch.url);
      }
    } finally {
      await scratch.drop();
    }
  }
  return report(all);
}

/** Deallocates what a cell allocated beyond the standing instances (the samples; the throughput run deallocates its own). */
async function cleanSamples(url: string): Promise<void> {
  const db = openDatabase(url);
  try {
    const manager = benchManager(db, 'flatdhcp', {
      config: benchConfig('flatdhcp', { NOVANET_HOST: HOST, NOVANET_FIXED_IP_DISASSOCIATE_TIMEOUT: '0' }),
    });
    for (let sample = 0; sample < SAMPLES; sample++) await manager.allocation.deallocate(instanceUuid(SAMPLE_BASE + sample));
    await manager.leases.disassociateStale();
  } finally {
    await db.close();
  }
}

runIfMain(import.meta.url, scaleBench);
