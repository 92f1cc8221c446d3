/**
 * The shared parts of the multi-process allocation tests
 * (test/managers/allocationRace.test.ts, test/db/galera.test.ts): worker processes
 * (allocationWorker.ts) racing on one database, and the invariants the
 * database must hold afterwards. Each process may talk to its own URL, e.g. its own
 * Galera node.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Knex } from 'knex';
import { expect } from 'vitest';
import type { AllocationJob, WorkerReport, WorkerSpec } from './allocationWorker.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const WORKER = fileURLToPath(new URL('./allocationWorker.ts', import.meta.url));
export const WORKERS_PER_PROCESS = 32;
/** Pool per process: the service queues its callers rather than the database (connection.ts). */
const POOL_SIZE = 4;
/** A worker stops starting jobs after this, and is killed if it runs much longer. */
const WORKER_DEADLINE_MS = 25_000;
const WORKER_KILL_MS = 40_000;

/** Runs one worker process to completion; resolves with its JSON report. */
function runWorker(spec: WorkerSpec): Promise<WorkerReport> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', WORKER], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-4000);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), WORKER_KILL_MS);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) {
        reject(new Error(`allocation worker ${child.pid} ended with ${signal ?? `exit ${code}`}:\n${stderr}`));
        return;
      }
      try {
        // The report is the last line: knex logs warnings (e.g. a lost connection) on stdout too.
        resolve(JSON.parse(stdout.trimEnd().split('\n').at(-1)!) as WorkerReport);
      } catch {
        reject(new Error(`allocation worker ${child.pid} printed no report:\n${stdout.slice(0, 2000)}\n${stderr}`));
      }
    });
    child.stdin.end(JSON.stringify(spec));
  });
}

/** Splits the jobs round-robin between the processes, one per URL, and runs them all at once. */
export async function race(urls: string[], config: Record<string, string>, jobs: AllocationJob[]): Promise<WorkerReport[]> {
  const shares = urls.map((_, p) => jobs.filter((_, index) => index % urls.length === p));
  return Promise.all(
    shares.map((share, p) =>
      runWorker({
        url: urls[p]!,
        config,
        poolSize: POOL_SIZE,
        concurrency: WORKERS_PER_PROCESS,
        jobs: share,
        deadlineMs: WORKER_DEADLINE_MS,
      }),
    ),
  );
}

export const instanceUuid = (index: number) => `00000000-0000-4000-8000-${index.toString(16).padStart(12, '0')}`;

type FixedRow = { address: string; instance_uuid: string | null; allocated: number; virtual_interface_id: number | null };
type VifRow = { id: number; instance_uuid: string; network_id: number };

export async function snapshot(knex: Knex) {
  const fixed = (await knex('fixed_ips').select('address', 'instance_uuid', 'allocated', 'virtual_interface_id')) as FixedRow[];
  const vifs = (await knex('virtual_interfaces').select('id', 'instance_uuid', 'network_id')) as VifRow[];
  return { fixed, vifs, allocated: fixed.filter((row) => Number(row.allocated) === 1) };
}

/**
 * The invariants every allocation case shares: `live` instances hold exactly one
 * allocated address each, through their own VIF, and it is the address they were
 * told; `gone` instances hold no allocated address and no VIF; nothing else is allocated.
 */
export async function expectAllocations(knex: Knex, reports: WorkerReport[], live: Set<string>, gone: Set<string>) {
  const { vifs, allocated } = await snapshot(knex);
  expect(vifs).toHaveLength(live.size);
  expect(new Set(vifs.map((vif) => vif.instance_uuid))).toEqual(live);
  expect(allocated).toHaveLength(live.size);
  const byInstance = new Map(allocated.map((row) => [row.instance_uuid, row]));
  expect(byInstance.size).toBe(live.size);
  const vifOf = new Map(vifs.map((vif) => [vif.instance_uuid, vif.id]));
  for (const row of allocated) {
    expect(live.has(row.instance_uuid!), `${row.address} is allocated to ${row.instance_uuid}, which should hold nothing`).toBe(true);
    expect(row.virtual_interface_id, `${row.address} is not on its instance's VIF`).toBe(vifOf.get(row.instance_uuid!));
  }
  for (const instance of gone) expect(byInstance.has(instance)).toBe(false);
  // What each instance was told is what the database holds, and no address was told twice.
  const told = new Map<string, string>();
  for (const entry of reports.flatMap((report) => report.allocated)) {
    expect(entry.addresses).toHaveLength(1);
    if (live.has(entry.instanceUuid)) expect(byInstance.get(entry.instanceUuid)?.address).toBe(entry.addresses[0]);
    told.set(entry.instanceUuid, entry.addresses[0]!);
  }
  expect(told.size).toBe(live.size + gone.size);
  const liveAddresses = [...live].map((instance) => told.get(instance));
  expect(new Set(liveAddresses).size).toBe(live.size);
}
