/**
 * Floating IP associate and disassociate latency with 10, 1,000 and 10,000 floating
 * IPs already associated, on the real kernel inside a lab namespace: novanet's
 * manager call (database, then the reconciler's partial apply: one bind and an
 * `iptables-restore --noflush` of the changed lines) side by side with the naive
 * approach of nova's IptablesManager (save the whole nat table, edit it, restore all
 * of it), at the same count, in the same namespace. The kernel is checked as it goes.
 */
import { performance } from 'node:perf_hooks';
import { Lab } from '../tools/lab.js';
import { FloatingLab, type Pair } from './support/floatingLab.js';
import { naiveNatChange } from './support/floatingNat.js';
import { type BenchEnv, markdownTable, millis, percentile, runIfMain, seconds } from './support/harness.js';

const SIZES = (process.env.BENCH_ASSOCIATE_SIZES ?? '10,1000,10000')
  .split(',')
  .map(Number)
  .sort((a, b) => a - b);
/** Timed associate + disassociate pairs per cell, after WARMUP untimed ones; a cell also stops after CELL_MS. */
const SAMPLES = Number(process.env.BENCH_ASSOCIATE_SAMPLES ?? 30);
const CELL_MS = Number(process.env.BENCH_ASSOCIATE_CELL_MS ?? 90_000);
/** Creating the instances, and raising the associations to each size (DB rows, binds, full reconcile, check), must each take less. */
const SETUP_MS = Number(process.env.BENCH_ASSOCIATE_SETUP_MS ?? 120_000);
const WARMUP = 2;
/**
 * The kernel is checked after both steps of the warm-up pairs, of the first
 * CHECK_FIRST timed ones and of every CHECK_EVERY-th, and at the end of each cell: a
 * check reads the whole nat table (0.3 s at 10,000), too slow for every step.
 */
const CHECK_FIRST = 3;
const CHECK_EVERY = 10;

const STEPS = ['associate', 'disassociate'] as const;
type Step = (typeof STEPS)[number];

/** Per step, the latency of each timed call and the host layer's share of it (novanet only). */
type Cell = Record<Step, { total: number[]; host: number[] }>;

/** One way of making the two changes: novanet's or the baseline's. */
type Approach = Record<Step, (pair: Pair) => Promise<void>>;

async function measure(world: FloatingLab, approach: Approach): Promise<Cell> {
  const cell: Cell = { associate: { total: [], host: [] }, disassociate: { total: [], host: [] } };
  const standing = world.rules();
  const runs = [...world.samples.slice(0, WARMUP), ...world.samples];
  const used = new Set<string>();
  const deadline = performance.now() + CELL_MS;
  for (const [index, pair] of runs.entries()) {
    if (performance.now() > deadline) break;
    const timed = index >= WARMUP;
    const checked = index < WARMUP + CHECK_FIRST || (index - WARMUP) % CHECK_EVERY === CHECK_EVERY - 1;
    for (const step of STEPS) {
      const hostBefore = world.hostMs;
      const started = performance.now();
      await approach[step](pair);
      if (timed) {
        cell[step].total.push(performance.now() - started);
        cell[step].host.push(world.hostMs - hostBefore);
      }
      if (checked) await (step === 'associate' ? world.expect([...standing, pair.rule], []) : world.expect(standing, [pair.rule.address]));
    }
    used.add(pair.rule.address);
  }
  await world.expect(standing, [...used]);
  for (const step of STEPS) for (const values of Object.values(cell[step])) values.sort((a, b) => a - b);
  return cell;
}

/** The manager calls the API makes; they return once the host layer has applied them. */
function novanet(world: FloatingLab): Approach {
  const checked = async (work: () => Promise<unknown>) => {
    await work();
    const errors = world.hostErrors();
    if (errors.length > 0) throw new Error(`host layer: ${errors.join('; ')}`);
  };
  return {
    associate: (pair) =>
      checked(() => world.manager.floating.associate({ address: pair.rule.address, instanceUuid: pair.instanceUuid, actor: 'admin' })),
    disassociate: (pair) => checked(() => world.manager.floating.disassociate(pair.rule.address, 'admin')),
  };
}

/** nova's way: `ip addr` and a save / edit / restore of the whole nat table, per change. */
function naive(world: FloatingLab): Approach {
  return {
    associate: async (pair) => {
      await world.driver.bind(pair.rule.address, pair.rule.interface);
      await naiveNatChange(world.executor, pair.rule, 'add');
    },
    disassociate: async (pair) => {
      await naiveNatChange(world.executor, pair.rule, 'remove');
      await world.driver.unbind(pair.rule.address, pair.rule.interface);
    },
  };
}

interface Result {
  size: number;
  ours: Cell;
  nova: Cell;
}

const p50 = (values: number[]) => percentile(values, 50);
const times = (value: number) => `${value.toFixed(1)}×`;
const count = (value: number) => value.toLocaleString('en');

const TITLE =
  '### associate: one floating IP associated, then disassociated, with N already associated (SQLite, real kernel in a namespace)';

export async function associateBench(env: BenchEnv): Promise<string> {
  // Namespaces, addresses and rules need root; the other benchmarks do not.
  if (process.getuid?.() !== 0) return `${TITLE}\n\nskipped: needs root (it builds a network namespace)`;
  const lab = await Lab.create({ vms: 0, flatInterfaceAddress: '172.31.0.10/24' });
  let world: FloatingLab | undefined;
  try {
    let started = performance.now();
    world = await FloatingLab.create(lab, Math.max(...SIZES), SAMPLES);
    const populateMs = performance.now() - started;
    env.log(`associate: ${count(Math.max(...SIZES) + SAMPLES)} instances with fixed and floating IPs in ${seconds(populateMs)}`);
    if (populateMs > SETUP_MS) throw new Error(`creating the instances took ${seconds(populateMs)}, over the ${seconds(SETUP_MS)} bound`);
    const results: Result[] = [];
    for (const size of SIZES) {
      const setupMs = await world.associateUpTo(size);
      env.log(`associate: ${count(size)} associated (rows, ip -batch, full reconcile, checked) in ${seconds(setupMs)}`);
      if (setupMs > SETUP_MS)
        throw new Error(`setup of ${size} associations took ${seconds(setupMs)}, over the ${seconds(SETUP_MS)} bound`);
      started = performance.now();
      const ours = await measure(world, novanet(world));
      env.log(`associate at ${count(size)}, novanet: ${ours.associate.total.length} pairs in ${seconds(performance.now() - started)}`);
      started = performance.now();
      const nova = await measure(world, naive(world));
      env.log(`associate at ${count(size)}, naive: ${nova.associate.total.length} pairs in ${seconds(performance.now() - started)}`);
      // The baseline rewrote the table behind the driver's back: let novanet read it again.
      await world.reconciler.reconcileAll();
      results.push({ size, ours, nova });
    }
    return report(results);
  } finally {
    await world?.close();
    await lab.destroy();
  }
}

function report(results: Result[]): string {
  const latencies = (cell: Cell) => STEPS.flatMap((step) => [millis(p50(cell[step].total)), millis(percentile(cell[step].total, 95))]);
  const rows = results.map(({ size, ours, nova }) => [
    count(size),
    ...latencies(ours),
    ...latencies(nova),
    ...STEPS.map((step) => times(p50(nova[step].total) / p50(ours[step].total))),
  ]);
  const shares = results.map(({ size, ours }) => [
    count(size),
    ...STEPS.flatMap((step) => [millis(p50(ours[step].total)), millis(p50(ours[step].host))]),
  ]);
  return [
    TITLE,
    '',
    markdownTable(
      [
        'N associated',
        'novanet associate p50',
        'p95',
        'disassociate p50',
        'p95',
        'naive associate p50',
        'p95',
        'disassociate p50',
        'p95',
        'naive / novanet, associate',
        'disassociate',
      ],
      rows,
    ),
    '',
    'novanet, where the time goes (p50; host layer = the partial reconcile, in whole ms; the rest is the transaction and the manager):',
    '',
    markdownTable(['N associated', 'associate', 'of which host layer', 'disassociate', 'of which host layer'], shares),
    '',
    "- novanet: `floating.associate` / `floating.disassociate` on a manager whose host layer is the real reconciler (the call returns once the kernel is updated): the transaction, then the partial reconcile that reads that one row, `ip addr add/del`, and `iptables-restore --noflush` of the changed lines; both also flush the address's conntrack entries (two `conntrack -D`, run together).",
    "- naive: what nova's IptablesManager did per change: `ip addr add/del`, `iptables-save -t nat`, the floating IP's 4 rules (and, for a new /24, its chains and jumps) added to or removed from the text, and the whole nat table restored (no --noflush). No database work.",
    `- Each cell: ${WARMUP} untimed pairs, then up to ${SAMPLES} timed associate + disassociate pairs or ${seconds(CELL_MS)}. The kernel is checked (every associated address bound, each of its nat rules and its /24s' jumps exactly once; a disassociated one unbound and in no rule) after the first ${WARMUP + CHECK_FIRST} pairs, every ${CHECK_EVERY}th, and at the end of the cell. Every command runs through \`ip netns exec\` (root_helper in the lab), which adds a few ms per process to both approaches.`,
    ...goalNotes(results),
  ].join('\n');
}

/** The issue's goals, quoted with both approaches' figures. */
function goalNotes(results: Result[]): string[] {
  const first = results[0];
  const last = results[results.length - 1];
  if (!first || !last || first === last) return [];
  return STEPS.map((step) => {
    const ours = p50(last.ours[step].total);
    const nova = p50(last.nova[step].total);
    const speedup = nova / ours;
    return `- ${step} at ${count(last.size)}: novanet ${millis(ours)}, naive ${millis(nova)}: ${times(speedup)} (goal ≥ 10×: ${speedup >= 10 ? 'met' : 'NOT MET'}); novanet at ${count(last.size)} / at ${count(first.size)}: ${times(ours / p50(first.ours[step].total))} (goal: flat).`;
  });
}

runIfMain(import.meta.url, associateBench);
