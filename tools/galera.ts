/**
 * A private, throw-away 3-node MariaDB Galera cluster on 127.0.0.1 for tests and
 * benchmarks. Each node is a tools/mariadb.ts server (own temp dir, data directory,
 * socket and client port, --no-defaults, stopped by PID) with wsrep settings on top
 * and its own group, IST and SST ports. Node 1 bootstraps the cluster; nodes 2 and 3
 * join one after the other and receive its data by rsync SST.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import mysql from 'mysql2/promise';
import { type MariaDbServer, startMariaDb } from './mariadb.js';

export const GALERA_PROVIDER = '/usr/lib/galera/libgalera_smm.so';
const NODES = 3;

export interface GaleraCluster {
  /** The nodes in start order; a stopped node stays in the list. */
  nodes: MariaDbServer[];
  /** `mysql://user:pass@127.0.0.1:Pn,127.0.0.1:.../DATABASE`: node `preferred` (0-based) first, the others as fallback. */
  urlFor(preferred: number, database?: string): string;
  /** Transactions the running nodes aborted for a conflict with another node's (certification failures and brute-force aborts). */
  conflicts(): Promise<number>;
  /** Returns once every running node has applied what any node committed before the call (replication applies asynchronously). */
  caughtUp(): Promise<void>;
  stop(): Promise<void>;
}

interface NodePorts {
  group: number;
  ist: number;
  sst: number;
}

/**
 * Below the kernel's ephemeral range (ip_local_port_range, 32768 and up by default):
 * a port picked inside it can be taken, between picking and binding, by an outgoing
 * connection of a node started before, as a test run once saw.
 */
function galeraPortRange(): { from: number; to: number } {
  let ephemeralStart = 32_768;
  try {
    ephemeralStart = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || ephemeralStart;
  } catch {
    // not Linux: keep the default
  }
  return { from: Math.max(1024, ephemeralStart - 12_000), to: ephemeralStart };
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

/** Distinct free ports for every node's group, IST and SST traffic. */
async function pickPorts(): Promise<NodePorts[]> {
  const { from, to } = galeraPortRange();
  const ports = new Set<number>();
  while (ports.size < NODES * 3) {
    const port = from + Math.floor(Math.random() * (to - from));
    if (!ports.has(port) && (await canListen(port))) ports.add(port);
  }
  const list = [...ports];
  return Array.from({ length: NODES }, (_, n) => ({ group: list[3 * n]!, ist: list[3 * n + 1]!, sst: list[3 * n + 2]! }));
}

async function statusOf(root: mysql.Connection, name: string): Promise<string | undefined> {
  const [rows] = await root.query('SHOW GLOBAL STATUS LIKE ?', [name]);
  return (rows as { Value: string }[])[0]?.Value;
}

function asRoot(node: MariaDbServer): Promise<mysql.Connection> {
  return mysql.createConnection({ socketPath: node.socket, user: 'root', password: '' });
}

async function eachRunning(nodes: MariaDbServer[], work: (root: mysql.Connection) => Promise<void>): Promise<void> {
  for (const node of nodes.filter((candidate) => !candidate.stopped)) {
    const root = await asRoot(node);
    try {
      await work(root);
    } finally {
      await root.end();
    }
  }
}

function wsrepArgs(ports: NodePorts, all: NodePorts[], bootstrap: boolean): string[] {
  return [
    '--wsrep-on=ON',
    `--wsrep-provider=${GALERA_PROVIDER}`,
    `--wsrep-cluster-address=gcomm://${all.map((node) => `127.0.0.1:${node.group}`).join(',')}`,
    '--wsrep-cluster-name=novanet-test',
    `--wsrep-node-address=127.0.0.1:${ports.group}`,
    // A small gcache: these clusters live for a test run only.
    `--wsrep-provider-options=gmcast.listen_addr=tcp://127.0.0.1:${ports.group};ist.recv_addr=127.0.0.1:${ports.ist};gcache.size=64M`,
    `--wsrep-sst-receive-address=127.0.0.1:${ports.sst}`,
    '--wsrep-sst-method=rsync',
    // An autocommit statement that loses certification is run again by the server itself
    // (default once); novanet's lone writes are conditional UPDATEs, safe to repeat.
    '--wsrep-retry-autocommit=10',
    '--binlog-format=ROW',
    '--innodb-autoinc-lock-mode=2',
    '--default-storage-engine=InnoDB',
    ...(bootstrap ? ['--wsrep-new-cluster'] : []),
  ];
}

/** Host list of a multi-host URL with node `preferred` first. */
function hostList(nodes: MariaDbServer[], preferred: number): string {
  const order = [preferred, ...nodes.keys()].filter((n, index, all) => all.indexOf(n) === index);
  return order.map((n) => `127.0.0.1:${nodes[n]!.port}`).join(',');
}

export async function startGaleraCluster(options: { durable?: boolean } = {}): Promise<GaleraCluster> {
  if (!existsSync(GALERA_PROVIDER)) throw new Error(`no Galera provider at ${GALERA_PROVIDER} (is galera-4 installed? try \`make deps\`)`);
  const ports = await pickPorts();
  const password = randomBytes(12).toString('hex');
  const nodes: MariaDbServer[] = [];
  const stop = async (): Promise<void> => {
    // Joiners first, so the last node standing is the one that bootstrapped.
    for (const node of [...nodes].reverse()) await node.stop();
  };
  try {
    for (const [n, nodePorts] of ports.entries()) {
      nodes.push(
        await startMariaDb({
          name: `galera-${n + 1}`,
          durable: options.durable,
          password,
          osUser: 'mysql',
          serverArgs: wsrepArgs(nodePorts, ports, n === 0),
          isReady: async (root) => (await statusOf(root, 'wsrep_local_state_comment')) === 'Synced',
        }),
      );
    }
    // Synced nodes that all see one another: only then are writes spread safely.
    const deadline = Date.now() + 30_000;
    for (const node of nodes) {
      const root = await asRoot(node);
      try {
        while ((await statusOf(root, 'wsrep_cluster_size')) !== String(NODES)) {
          if (Date.now() > deadline) throw new Error(`Galera node on port ${node.port} never saw ${NODES} nodes`);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      } finally {
        await root.end();
      }
    }
  } catch (error) {
    await stop();
    throw error;
  }
  const credentials = new URL(nodes[0]!.url);
  return {
    nodes,
    conflicts: async () => {
      let total = 0;
      await eachRunning(nodes, async (root) => {
        for (const name of ['wsrep_local_cert_failures', 'wsrep_local_bf_aborts']) total += Number(await statusOf(root, name));
      });
      return total;
    },
    caughtUp: () =>
      eachRunning(nodes, async (root) => {
        // A read under wsrep_sync_wait waits until the node has applied the cluster's earlier commits.
        await root.query('SET SESSION wsrep_sync_wait = 1');
        await root.query('SELECT 1 FROM mysql.user LIMIT 1');
      }),
    urlFor: (preferred, database) =>
      `mysql://${credentials.username}:${credentials.password}@${hostList(nodes, preferred)}${database ? `/${database}` : credentials.pathname}`,
    stop,
  };
}
