import { createSocket, type Socket } from 'node:dgram';
import type { Database } from '../db/connection.js';
import { type HostRow, listHosts } from '../db/hosts.js';
import { networkHostsOf } from '../db/networks.js';
import type { HostChange, HostLayer } from './layer.js';

/**
 * Wakes: a service that changed what another host acts on (a VIF in a network that
 * host serves or holds) sends it one UDP datagram, and that host polls the database
 * at once instead of within the second. The datagram says only "poll now": what
 * changed is read from the database, so a lost, repeated or forged wake costs one
 * early poll and nothing else.
 */
const WAKE = Buffer.from('novanet-wake\n');

/** However many wakes arrive, woken polls start at most this often. */
const MIN_GAP_MS = 20;

export interface WakeListener {
  /** `ADDRESS:PORT` as bound: what the hosts table tells the others. */
  address: string;
  close(): Promise<void>;
}

/** Listens on `address:port` (0: any free port) and calls `onWake` for each wake, spaced by MIN_GAP_MS. */
export function listenForWakes(address: string, port: number, onWake: () => void): Promise<WakeListener> {
  const socket = createSocket('udp4');
  let timer: NodeJS.Timeout | undefined;
  let last = 0;
  socket.on('message', (message) => {
    if (!message.equals(WAKE) || timer) return;
    timer = setTimeout(
      () => {
        timer = undefined;
        last = Date.now();
        onWake();
      },
      Math.max(0, last + MIN_GAP_MS - Date.now()),
    );
  });
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, address, () => {
      socket.off('error', reject);
      // A datagram that cannot be read is a wake lost: the next poll covers it.
      socket.on('error', () => undefined);
      const bound = socket.address();
      resolve({
        address: `${bound.address}:${bound.port}`,
        close: () =>
          new Promise((done) => {
            clearTimeout(timer);
            socket.close(() => done());
          }),
      });
    });
  });
}

/** How long the hosts table read for a wake serves the next ones. */
const HOSTS_FRESH_MS = 1_000;

/**
 * The host layer the managers talk to: wakes the other hosts a change concerns (each
 * network's network host, the hosts that hold the network, the instance's host) while
 * it applies the change here, so they work while this host builds.
 */
export class WakingHostLayer implements HostLayer {
  private socket: Socket | undefined;
  /** The hosts table as last read: a host that joined since is found by its own poll. */
  private hosts: { at: number; rows: Promise<HostRow[]> } | undefined;

  constructor(
    private readonly local: HostLayer,
    private readonly db: Database,
    private readonly self: string,
    private readonly log: (event: string, fields?: Record<string, unknown>) => void,
    private readonly hostsFreshMs = HOSTS_FRESH_MS,
  ) {}

  async apply(changes: HostChange[]): Promise<void> {
    // Not before the local apply: the reconciler batches changes that arrive together.
    const woken = this.wake(changes).catch((error: Error) => this.log('wake.failed', { error: error.message }));
    await Promise.all([woken, this.local.apply(changes)]);
  }

  close(): void {
    this.socket?.close();
    this.socket = undefined;
  }

  private async wake(changes: HostChange[]): Promise<void> {
    const networkIds = new Set<number>();
    const named = new Set<string>();
    for (const change of changes) {
      if (change.kind === 'network-deleted') networkIds.add(change.network.id);
      else if (change.kind !== 'floating-updated') networkIds.add(change.networkId);
      if (change.kind === 'dhcp-host' && change.computeHost) named.add(change.computeHost);
    }
    if (networkIds.size === 0) return;
    const others = (await this.otherHosts()).filter((host) => host.wakeAddress !== null);
    // One host alone (or none listening) pays nothing more per change.
    if (others.length === 0) return;
    const uuids = new Set<string>();
    for (const network of await networkHostsOf(this.db.knex, [...networkIds])) {
      uuids.add(network.uuid);
      if (network.host) named.add(network.host);
    }
    for (const host of others) {
      if (named.has(host.name) || [...uuids].some((uuid) => host.builtNetworks.has(uuid))) this.send(host.wakeAddress!);
    }
  }

  private async otherHosts(): Promise<HostRow[]> {
    if (!this.hosts || Date.now() - this.hosts.at >= this.hostsFreshMs) {
      const rows = listHosts(this.db.knex);
      // A failed read is not kept: the next change reads again.
      rows.catch(() => {
        this.hosts = undefined;
      });
      this.hosts = { at: Date.now(), rows };
    }
    return (await this.hosts.rows).filter((host) => host.name !== this.self);
  }

  private send(to: string): void {
    const colon = to.lastIndexOf(':');
    if (!this.socket) {
      this.socket = createSocket('udp4');
      this.socket.on('error', (error) => this.log('wake.failed', { error: error.message }));
      this.socket.unref();
    }
    this.socket.send(WAKE, Number(to.slice(colon + 1)), to.slice(0, colon));
  }
}
