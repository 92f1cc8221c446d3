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
 * to `work` at once, which returns one result per item, in order. There is no timer: a
 * lone call runs at once, and batches form only while earlier ones are busy, so the
 * callers wait in the service rather than in the database. A batch that fails is run
 * again item by item, so each caller gets its own result or its own error; those
 * runs give up the batch's place first, so one caller's failing item (a full network)
 * does not hold up everyone queued behind it.
 */
export class Batcher<Item, Result> {
  private readonly queue: Entry<Item, Result>[] = [];
  private running = 0;

  constructor(
    private readonly work: (items: Item[]) => Promise<Result[]>,
    private readonly options: BatcherOptions,
  ) {}

  submit(item: Item): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
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
      batch.forEach((entry, index) => entry.resolve(results[index]!));
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
