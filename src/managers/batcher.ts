export interface BatcherOptions {
  /** Items per batch at most. */
  maxBatch: number;
  /** Batches running at once at most; the rest of the callers wait in the queue. */
  maxConcurrent: number;
}

interface Entry<Item, Result> {
  item: Item;
  resolve(result: Result): void;
  reject(error: unknown): void;
}

/**
 * Coalesces concurrent calls: `submit` queues an item, and whenever fewer than
 * `maxConcurrent` batches are running, everything queued (up to `maxBatch` items) goes
 * to `work` at once, which returns one result per item, in order. There is no timer:
 * a free slot starts its batch one event-loop turn after the first item (setImmediate),
 * so the calls whose requests arrived in the same burst share it, and a lone call
 * waits microseconds. Without that turn the first of each burst ran alone and took a
 * whole batch's round trips for itself, ahead of the rest (under load, nearly half
 * the batches held one call). Later batches form while earlier ones are busy, so the
 * callers wait in the service rather than in the database. A batch that fails is run
 * again item by item, so each caller gets its own result or its own error; those
 * runs give up the batch's place first, so one caller's failing item (a full network)
 * does not hold up everyone queued behind it.
 */
export class Batcher<Item, Result> {
  private readonly queue: Entry<Item, Result>[] = [];
  private running = 0;
  private starting = false;

  constructor(
    private readonly work: (items: Item[]) => Promise<Result[]>,
    private readonly options: BatcherOptions,
  ) {}

  submit(item: Item): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.startSoon();
    });
  }

  /** A free slot's batch starts in the next turn; a busy batcher's next one starts when a running one ends. */
  private startSoon(): void {
    if (this.starting || this.running >= this.options.maxConcurrent) return;
    this.starting = true;
    setImmediate(() => {
      this.starting = false;
      this.pump();
    });
  }

  private pump(): void {
    while (this.running < this.options.maxConcurrent && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.options.maxBatch);
      this.running++;
      void this.run(batch);
    }
  }

  private async run(batch: Entry<Item, Result>[]): Promise<void> {
    let failed = false;
    try {
      const results = await this.work(batch.map((entry) => entry.item));
      for (const [index, entry] of batch.entries()) entry.resolve(results[index]!);
    } catch (error) {
      if (batch.length === 1) batch[0]!.reject(error);
      else failed = true;
    } finally {
      this.running--;
      this.pump();
    }
    if (!failed) return;
    for (const entry of batch) {
      try {
        const [result] = await this.work([entry.item]);
        entry.resolve(result!);
      } catch (error) {
        entry.reject(error);
      }
    }
  }
}
