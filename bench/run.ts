/**
 * `make bench`: every benchmark in sequence against one private MariaDB server, each
 * printing its markdown table as soon as it is done.
 */
import { allocateBench } from './allocate.js';
import { createNetworkBench } from './createNetwork.js';
import { runIfMain, type Bench } from './support/harness.js';

const BENCHES: Bench[] = [createNetworkBench, allocateBench];

const all: Bench = async (env) => {
  const started = Date.now();
  for (const bench of BENCHES) process.stdout.write(`${await bench(env)}\n\n`);
  env.log(`all benchmarks took ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return '';
};

runIfMain(import.meta.url, all);
