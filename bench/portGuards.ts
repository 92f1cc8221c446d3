/**
 * Anti-spoofing's cost on the kernel (issue 19): the port guard table of N ports in a
 * scratch network namespace, through the real `nft`. A port's arrival and departure
 * change only its own set elements; the table made whole (a host's first start, or a
 * repair) is the cost a rewrite of every port would pay for each change.
 */
import { execFileSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { processExecutor } from '../src/linux_net/executor.js';
import { type GuardedPort, PortGuard } from '../src/linux_net/portGuard.js';
import { type BenchEnv, markdownTable, millis, percentile, runIfMain } from './support/harness.js';

const SIZES = (process.env.BENCH_GUARD_SIZES ?? '100,1000,2000').split(',').map(Number);
/** Timed arrivals (each followed by its departure) per size. */
const SAMPLES = Number(process.env.BENCH_GUARD_SAMPLES ?? 20);

function port(index: number): GuardedPort {
  const byte = (shift: number) => ((index >> shift) & 255).toString(16).padStart(2, '0');
  return {
    tap: `tap${index.toString(16).padStart(8, '0')}-00`,
    mac: `fa:16:3e:${byte(16)}:${byte(8)}:${byte(0)}`,
    ipv4: [`10.${(index >> 8) & 255}.${index & 255}.3`],
    ipv6: [`fd00::${index.toString(16)}`],
  };
}

async function timed(work: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await work();
  return performance.now() - started;
}

export async function portGuardsBench(env: BenchEnv): Promise<string> {
  const ns = `nnbenchguard-${process.pid}`;
  execFileSync('ip', ['netns', 'add', ns]);
  const executor = processExecutor({ rootHelper: ['ip', 'netns', 'exec', ns], log: () => undefined });
  const rows: string[][] = [];
  try {
    for (const size of SIZES) {
      const ports = Array.from({ length: size }, (_, index) => port(index));
      await new PortGuard(executor).sync([], true).catch(() => undefined);
      execFileSync('ip', ['netns', 'exec', ns, 'nft', 'flush', 'ruleset']);
      const guard = new PortGuard(executor);
      const whole = await timed(() => guard.sync(ports, true));
      const arrivals: number[] = [];
      const departures: number[] = [];
      for (let sample = 0; sample < SAMPLES; sample++) {
        const more = [...ports, port(size + sample)];
        arrivals.push(await timed(() => guard.sync(more, false)));
        departures.push(await timed(() => guard.sync(ports, false)));
      }
      // A restarted service: reads the table, finds it as wanted, writes nothing.
      const restart = await timed(() => new PortGuard(executor).sync(ports, true));
      arrivals.sort((a, b) => a - b);
      departures.sort((a, b) => a - b);
      rows.push([
        size.toLocaleString('en'),
        millis(whole),
        millis(percentile(arrivals, 50)),
        millis(percentile(arrivals, 95)),
        millis(percentile(departures, 50)),
        millis(restart),
      ]);
      env.log(`portGuards ${size}: arrival p50 ${millis(percentile(arrivals, 50))}`);
    }
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
  }
  return [
    "### portGuards: a VM port's arrival and departure among N guarded ports",
    '',
    markdownTable(['ports', 'table made whole', 'arrival p50', 'arrival p95', 'departure p50', 'restart check'], rows),
    '',
    `Through \`ip netns exec\` and the real nft (${SAMPLES} arrivals and departures per size). "Table made whole" is what each change would cost if the table were rewritten for every port change.`,
  ].join('\n');
}

runIfMain(import.meta.url, portGuardsBench);
