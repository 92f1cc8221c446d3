/**
 * One OS process of the multi-process allocation tests
 * (test/managers/allocationRace.test.ts, test/db/galera.test.ts): its own knex pool
 * and manager, `concurrency` async workers sharing one job list. Run as
 * `node --import tsx test/support/allocationWorker.ts` with a WorkerSpec as JSON on
 * stdin; prints one WorkerReport as JSON on stdout. Errors are reported, not thrown,
 * so the test can tell expected ones (NoMoreNetworks) from the rest.
 */
import { openDatabase } from '../../src/db/connection.js';
import { createManager } from '../../src/managers/registry.js';
import { testConfig } from './databases.js';
import { RecordingHost } from './recordingHost.js';

export interface AllocationJob {
  instanceUuid: string;
  projectId: string;
  /** Deallocate the instance again right after allocating it. */
  deallocate?: boolean;
}

export interface WorkerSpec {
  url: string;
  /** testConfig() overrides, e.g. { network_manager: 'flatdhcp' }. */
  config: Record<string, string>;
  poolSize: number;
  concurrency: number;
  jobs: AllocationJob[];
  /** Jobs not started by then are reported as errors, so a hung database cannot hang the test. */
  deadlineMs: number;
}

export interface WorkerReport {
  pid: number;
  allocated: { instanceUuid: string; projectId: string; addresses: string[]; networks: string[] }[];
  deallocated: string[];
  errors: { instanceUuid: string; projectId: string; name: string; message: string }[];
  elapsedMs: number;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function run(spec: WorkerSpec): Promise<WorkerReport> {
  const started = Date.now();
  const db = openDatabase(spec.url, { maxPoolSize: spec.poolSize });
  const manager = createManager({ db, config: testConfig(spec.config), host: new RecordingHost(), log: () => undefined });
  const report: WorkerReport = { pid: process.pid, allocated: [], deallocated: [], errors: [], elapsedMs: 0 };
  let next = 0;

  const worker = async () => {
    for (let index = next++; index < spec.jobs.length; index = next++) {
      const { deallocate, ...job } = spec.jobs[index]!;
      if (Date.now() - started > spec.deadlineMs) {
        report.errors.push({ ...job, name: 'Deadline', message: `not started within ${spec.deadlineMs} ms` });
        continue;
      }
      try {
        const info = await manager.allocation.allocate({ ...job, host: 'compute1', hostname: `vm-${index}` });
        const vifs = info.network_info;
        report.allocated.push({
          ...job,
          addresses: vifs.flatMap((vif) => vif.network.subnets.flatMap((subnet) => subnet.ips.map((ip) => ip.address))),
          networks: vifs.map((vif) => vif.network.id),
        });
        if (deallocate) {
          await manager.allocation.deallocate(job.instanceUuid);
          report.deallocated.push(job.instanceUuid);
        }
      } catch (error) {
        const { name, message } = error instanceof Error ? error : new Error(String(error));
        report.errors.push({ ...job, name, message });
      }
    }
  };

  try {
    await Promise.all(Array.from({ length: spec.concurrency }, worker));
  } finally {
    await db.close();
  }
  report.elapsedMs = Date.now() - started;
  return report;
}

const spec = JSON.parse(await readStdin()) as WorkerSpec;
process.stdout.write(`${JSON.stringify(await run(spec))}\n`);
