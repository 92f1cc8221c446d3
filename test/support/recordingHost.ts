import type { HostChange, HostLayer } from '../../src/host/layer.js';

/** The host layer of unit and database tests: records what the managers asked for. */
export class RecordingHost implements HostLayer {
  readonly changes: HostChange[] = [];

  async apply(changes: HostChange[]): Promise<void> {
    this.changes.push(...changes);
  }

  kinds(): string[] {
    return this.changes.map((change) => change.kind);
  }

  clear(): void {
    this.changes.length = 0;
  }
}
