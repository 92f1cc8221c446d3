import { randomUUID } from 'node:crypto';
import type { Config } from '../config/options.js';
import type { Database } from '../db/connection.js';
import type { Queryable } from '../db/rows.js';
import type { HostChange, HostLayer } from '../host/layer.js';
import { randomMac } from '../ipam/mac.js';
import type { ModePolicy, PolicyContext } from './policy.js';

/** What a manager is built from; clock, ids and MACs are injectable for tests. */
export interface ManagerDeps {
  db: Database;
  config: Config;
  host: HostLayer;
  now?: () => Date;
  newUuid?: () => string;
  newMac?: () => string;
  log?: (message: string) => void;
}

/**
 * What every service of a manager shares: the database, the config, the mode's
 * policy, the host layer to tell, and the injectable clock and ids. The composition
 * root (registry.ts) builds one and hands it to each service.
 */
export class ManagerContext implements PolicyContext {
  readonly db: Database;
  readonly config: Config;
  readonly now: () => Date;
  readonly newUuid: () => string;
  readonly newMac: () => string;
  readonly log: (message: string) => void;
  private readonly host: HostLayer;

  constructor(
    deps: ManagerDeps,
    readonly policy: ModePolicy,
  ) {
    this.db = deps.db;
    this.config = deps.config;
    this.host = deps.host;
    this.now = deps.now ?? (() => new Date());
    this.newUuid = deps.newUuid ?? randomUUID;
    this.newMac = deps.newMac ?? (() => randomMac());
    this.log = deps.log ?? ((message) => process.stderr.write(`${message}\n`));
  }

  /** Runs `work` in one transaction; `mapError` may turn a driver error into a domain one. */
  async transaction<T>(work: (trx: Queryable) => Promise<T>, mapError?: (error: unknown) => Error | undefined): Promise<T> {
    try {
      return await this.db.knex.transaction(work);
    } catch (error) {
      throw mapError?.(error) ?? error;
    }
  }

  /** Tells the host layer what changed (after the transaction committed). */
  async notify(changes: HostChange[]): Promise<void> {
    if (changes.length > 0) await this.host.apply(changes);
  }
}
