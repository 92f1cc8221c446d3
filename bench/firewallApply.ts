/**
 * The firewall drivers' own work for one change among N floating IPs: a floating IP
 * associated, then disassociated again, through each backend's `apply` (render, diff,
 * the edit it writes), over an executor that answers at once. The kernel's share is in
 * the associate and scale benchmarks; this is the part that runs on the service's
 * event loop, and the garbage it leaves for the GC.
 */
import { performance } from 'node:perf_hooks';
import type { Executor } from '../src/linux_net/command.js';
import { createFirewall } from '../src/linux_net/firewall/index.js';
import type { FirewallState, FloatingRule } from '../src/linux_net/firewall/state.js';
import { type BenchEnv, markdownTable, millis, percentile, runIfMain } from './support/harness.js';

const SIZES = (process.env.BENCH_FIREWALL_SIZES ?? '1000,5000,10000').split(',').map(Number);
/** Timed associate + disassociate pairs per cell, after WARMUP untimed ones. */
const SAMPLES = Number(process.env.BENCH_FIREWALL_SAMPLES ?? 200);
const WARMUP = 50;

/** Answers every command at once: no table installed yet, every write accepted. */
const instant: Executor = {
  run: async (spec) =>
    spec.argv.includes('list') ? { code: 1, stdout: '', stderr: 'Error: No such file or directory' } : { code: 0, stdout: '', stderr: '' },
};

function state(floating: FloatingRule[]): FirewallState {
  return {
    publicInterface: 'eth0',
    routingSourceIp: '192.0.2.10',
    metadataHost: '10.0.0.1',
    metadataPort: 8775,
    dmzCidrs: [],
    networks: [{ cidr: '10.1.0.0/16', bridge: 'br100', gateway: '10.1.0.1', dhcp: true }],
    floating,
  };
}

/** N floating IPs in address order, as FloatingBindings keeps them (one object per rule). */
function standing(count: number): FloatingRule[] {
  return Array.from({ length: count }, (_, index) => ({
    address: `198.18.${index >> 8}.${index & 255}`,
    fixed: `10.1.${index >> 8}.${index & 255}`,
    interface: 'eth0',
  }));
}

export async function firewallApplyBench(env: BenchEnv): Promise<string> {
  const rows: string[][] = [];
  for (const backend of ['iptables', 'nftables'] as const) {
    for (const size of SIZES) {
      const firewall = createFirewall(backend, instant);
      const list = standing(size);
      await firewall.sync(state(list));
      const times: number[] = [];
      const heap: number[] = [];
      for (let sample = 0; sample < WARMUP + SAMPLES; sample++) {
        // The list is changed in place, as FloatingBindings does: one rule in, then out.
        const added = { address: `198.19.0.${sample % 250}`, fixed: '10.1.250.1', interface: 'eth0' };
        for (const change of [() => list.splice(size >> 1, 0, added), () => list.splice(size >> 1, 1)]) {
          change();
          const heapBefore = process.memoryUsage().heapUsed;
          const started = performance.now();
          await firewall.apply(state(list));
          const ms = performance.now() - started;
          const grown = process.memoryUsage().heapUsed - heapBefore;
          if (sample < WARMUP) continue;
          times.push(ms);
          // A GC during the apply makes the heap shrink: such samples say nothing of what it allocated.
          if (grown >= 0) heap.push(grown);
        }
      }
      times.sort((a, b) => a - b);
      heap.sort((a, b) => a - b);
      rows.push([
        backend,
        size.toLocaleString('en'),
        millis(percentile(times, 50)),
        millis(percentile(times, 90)),
        `${(percentile(heap, 50) / 1024).toFixed(0)} KB`,
      ]);
      env.log(`firewallApply ${backend} ${size}: ${millis(percentile(times, 50))}`);
    }
  }
  return [
    "### firewallApply: one floating IP associated or disassociated, the driver's own work",
    '',
    markdownTable(['backend', 'floating IPs', 'apply p50', 'apply p90', 'heap allocated p50'], rows),
    '',
    `Per apply (${SAMPLES} associate + disassociate pairs after ${WARMUP} untimed), over an executor that answers at once. ` +
      'Heap allocated: heapUsed after minus before, over the applies without a GC inside.',
  ].join('\n');
}

runIfMain(import.meta.url, firewallApplyBench);
