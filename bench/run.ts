/**
 * `make bench`: every benchmark in sequence, each printing its markdown table as soon
 * as it is done; `node dist/bench/run.js NAME...` runs only those named. MariaDB's
 * server is started only if a benchmark that uses it runs.
 */
import { allocateBench } from './allocate.js';
import { associateBench } from './associate.js';
import { clusterBench } from './cluster.js';
import { createNetworkBench } from './createNetwork.js';
import { firewallApplyBench } from './firewallApply.js';
import { portGuardsBench } from './portGuards.js';
import { scaleBench } from './scale.js';
import { type Bench, runIfMain } from './support/harness.js';

const BENCHES: Record<string, Bench> = {
  createNetwork: createNetworkBench,
  allocate: allocateBench,
  associate: associateBench,
  firewallApply: firewallApplyBench,
  scale: scaleBench,
  cluster: clusterBench,
  portGuards: portGuardsBench,
};

function sequence(names: string[]): Bench {
  return async (env) => {
    const started = Date.now();
    for (const name of names) process.stdout.write(`${await BENCHES[name]!(env)}\n\n`);
    env.log(`${names.join(', ')} took ${((Date.now() - started) / 1000).toFixed(0)} s`);
    return '';
  };
}

const asked = process.argv.slice(2);
const unknown = asked.filter((name) => !Object.hasOwn(BENCHES, name));
if (unknown.length > 0) {
  process.stderr.write(`unknown benchmark ${unknown.join(', ')}; there are: ${Object.keys(BENCHES).join(', ')}\n`);
  process.exitCode = 2;
} else {
  runIfMain(import.meta.url, sequence(asked.length > 0 ? asked : Object.keys(BENCHES)));
}
