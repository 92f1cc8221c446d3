/**
 * The associate bench's world: a lab namespace whose network host runs novanet's real
 * host layer (root_helper = ip netns exec), a SQLite database in the lab's directory
 * holding one FlatDHCP network, its instances and a floating range, and the means to
 * raise the number of associated floating IPs quickly: bulk database writes, one
 * `ip -batch` of binds, one full reconcile for the rules.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Config } from '../../src/config/options.js';
import { type Database, openDatabase } from '../../src/db/connection.js';
import * as fixedIps from '../../src/db/fixedIps.js';
import * as floatingIps from '../../src/db/floatingIps.js';
import { createHostLayer, type Reconciler } from '../../src/host/index.js';
import { type ProcessExecutor, processExecutor } from '../../src/linux_net/executor.js';
import type { FloatingRule } from '../../src/linux_net/firewall/state.js';
import { FloatingDriver } from '../../src/linux_net/floating.js';
import type { NetworkManager } from '../../src/managers/manager.js';
import type { Lab } from '../../tools/lab.js';
import { floatingProblems } from './floatingNat.js';
import { benchConfig, benchManager, instanceUuid, migrate } from './harness.js';

const PROJECT = 'bench';
/** 16,384 fixed addresses: room for 10,000 associations and the samples. */
const FIXED_RANGE = '10.0.0.0/18';
/** RFC 2544's benchmarking range; 16,382 floating addresses. */
const FLOATING_RANGE = '198.18.0.0/18';
const PUBLIC_INTERFACE = 'eth0';
/** Concurrent allocation.allocate callers during setup (the manager batches them). */
const SETUP_CALLERS = 64;

/** An instance with its fixed IP and the floating IP meant for it. */
export interface Pair {
  instanceUuid: string;
  fixedId: number;
  floatingId: number;
  rule: FloatingRule;
}

export class FloatingLab {
  /** Associated so far, in this order: `standing.slice(0, associated)`. */
  private associated = 0;
  /** Errors of the host layer's reconciles not yet collected by hostErrors(). */
  private readonly errors: string[] = [];
  /** Time spent in partial reconciles so far (whole ms, as reports give it): the host layer's share of the manager's calls. */
  hostMs = 0;
  readonly reconciler: Reconciler;
  /** The manager under test: its host layer is the real reconciler. */
  readonly manager: NetworkManager;
  /** Runs commands in the namespace, as the host layer does (for the baseline and the checks). */
  readonly executor: ProcessExecutor;
  readonly driver: FloatingDriver;
  /** Associated by associateUpTo, in this order. */
  readonly standing: Pair[] = [];
  /** Left unassociated, for the measurements to associate and disassociate. */
  readonly samples: Pair[] = [];
  /** The same service's manager with a host layer that does nothing: setup writes rows only. */
  private readonly setup: NetworkManager;

  private constructor(
    private readonly lab: Lab,
    private readonly db: Database,
    private readonly config: Config,
  ) {
    this.setup = benchManager(db, 'flatdhcp', { config });
    this.executor = processExecutor({ rootHelper: config.root_helper });
    this.reconciler = createHostLayer({
      db,
      config,
      capabilities: this.setup.capabilities,
      configFile: undefined,
      log: () => undefined,
      executor: this.executor,
      onReport: (report) => {
        this.errors.push(...report.errors);
        if (report.kind === 'partial') this.hostMs += report.durationMs;
      },
    });
    this.manager = benchManager(db, 'flatdhcp', { config, host: this.reconciler });
    this.driver = new FloatingDriver(this.executor, { sendArp: false, arpCount: 1, log: () => undefined });
  }

  /**
   * The database of a network host in `lab`, with `standing + samples` instances, each
   * holding a fixed IP and a floating IP of its project; none associated yet.
   */
  static async create(lab: Lab, standing: number, samples: number): Promise<FloatingLab> {
    const state = join(lab.dir, 'state');
    mkdirSync(state, { recursive: true });
    const url = `sqlite://${join(lab.dir, 'bench.sqlite')}`;
    await migrate(url);
    const config = benchConfig('flatdhcp', {
      NOVANET_HOST: 'nethost',
      NOVANET_MY_IP: lab.publicAddress,
      NOVANET_PUBLIC_INTERFACE: PUBLIC_INTERFACE,
      NOVANET_STATE_PATH: state,
      NOVANET_ROOT_HELPER: lab.rootHelper,
      NOVANET_QUOTA_FLOATING_IPS: '-1',
    });
    const world = new FloatingLab(lab, openDatabase(url), config);
    try {
      await world.populate(standing + samples);
      const pairs = await world.pairs();
      world.standing.push(...pairs.slice(0, standing));
      world.samples.push(...pairs.slice(standing));
    } catch (error) {
      await world.close();
      throw error;
    }
    return world;
  }

  /** DHCP is off: dnsmasq plays no part in a floating IP change. */
  private async populate(instances: number): Promise<void> {
    const { setup } = this;
    await setup.networks.create({ label: 'bench', fixedRangeV4: FIXED_RANGE, networkSize: 2 ** 14, enableDhcp: false });
    await setup.floating.createRange(FLOATING_RANGE);
    let next = 0;
    await Promise.all(
      Array.from({ length: SETUP_CALLERS }, async () => {
        while (next < instances) {
          const index = next++;
          await setup.allocation.allocate({ instanceUuid: instanceUuid(index), projectId: PROJECT, host: 'compute1' });
        }
      }),
    );
    const now = new Date();
    await this.db.knex.transaction(async (trx) => {
      for (let index = 0; index < instances; index++)
        await floatingIps.claimFloatingIp(trx, this.config.default_floating_pool, PROJECT, false, now);
    });
  }

  /** Instance i with the i-th floating IP of the project. */
  private async pairs(): Promise<Pair[]> {
    const fixedOf = new Map((await fixedIps.listFixedIps(this.db.knex, { associated: true })).map((fixed) => [fixed.instanceUuid, fixed]));
    const floating = await floatingIps.listFloatingIps(this.db.knex, { projectId: PROJECT });
    return floating.map((row, index) => {
      const fixed = fixedOf.get(instanceUuid(index));
      if (!fixed) throw new Error(`instance ${index} has no fixed IP`);
      return {
        instanceUuid: instanceUuid(index),
        fixedId: fixed.id,
        floatingId: row.id,
        rule: { address: row.address, fixed: fixed.address, interface: PUBLIC_INTERFACE },
      };
    });
  }

  /** The rules of the floating IPs associated now. */
  rules(): FloatingRule[] {
    return this.standing.slice(0, this.associated).map((pair) => pair.rule);
  }

  /**
   * Raises the associations to `count`: rows written in one transaction, the addresses
   * bound with one `ip -batch`, then a full reconcile installs the rules (and must find
   * every address bound already). Returns how long it took.
   */
  async associateUpTo(count: number): Promise<number> {
    const started = performance.now();
    const adding = this.standing.slice(this.associated, count);
    const now = new Date();
    await this.db.knex.transaction(async (trx) => {
      for (const pair of adding) await floatingIps.associate(trx, pair.floatingId, pair.fixedId, this.config.host, now);
    });
    const batch = adding.map((pair) => `address add ${pair.rule.address}/32 dev ${PUBLIC_INTERFACE}`).join('\n');
    const bound = await this.lab.exec(this.lab.netNs, ['ip', '-batch', '-'], { input: `${batch}\n`, timeoutMs: 60_000 });
    if (bound.code !== 0) throw new Error(`ip -batch of ${adding.length} binds failed: ${bound.stderr.trim()}`);
    this.associated = count;
    const report = await this.reconciler.reconcileAll();
    const rebound = report.changes.filter((change) => change.startsWith('bound floating'));
    if (report.errors.length > 0) throw new Error(`full reconcile at ${count}: ${report.errors.join('; ')}`);
    if (rebound.length > 0)
      throw new Error(`full reconcile at ${count} bound ${rebound.length} addresses ip -batch had bound, e.g. ${rebound[0]}`);
    this.hostErrors();
    await this.expect(this.rules(), []);
    return performance.now() - started;
  }

  /** Errors the host layer reported since the last call (a partial reconcile does not throw). */
  hostErrors(): string[] {
    return this.errors.splice(0);
  }

  /** Throws unless the kernel holds exactly `wanted` (bound, each rule once) and nothing of `gone`. */
  async expect(wanted: FloatingRule[], gone: string[]): Promise<void> {
    const problems = await floatingProblems(this.executor, this.driver, PUBLIC_INTERFACE, wanted, gone);
    if (problems.length > 0) throw new Error(`kernel state wrong (${problems.length} problems): ${problems.slice(0, 5).join('; ')}`);
  }

  async close(): Promise<void> {
    await this.reconciler.reconcileIdle();
    this.executor.close();
    await this.db.close();
  }
}
