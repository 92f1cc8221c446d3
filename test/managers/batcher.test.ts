/**
 * The Batcher (src/managers/batcher.ts): calls of one turn coalesce into batches of
 * at most maxBatch, at most maxConcurrent run at once, and a failed batch is run
 * again item by item so each caller gets its own answer.
 */
import { describe, expect, it } from 'vitest';
import { Batcher } from '../../src/managers/batcher.js';

describe('Batcher', () => {
  /** A batcher whose work records its batches and finishes when the test says so. */
  function recording(options = { maxBatch: 3, maxConcurrent: 1 }) {
    const batches: number[][] = [];
    const gates: (() => void)[] = [];
    const batcher = new Batcher<number, string>(async (items) => {
      batches.push(items);
      await new Promise<void>((resolve) => gates.push(resolve));
      if (items.includes(13) && items.length > 1) throw new Error('batch refused');
      if (items.includes(13)) throw new Error('13 refused');
      return items.map((item) => `done ${item}`);
    }, options);
    const openAll = async () => {
      for (let round = 0; round < 20 && gates.length > 0; round++) {
        for (const open of gates.splice(0)) open();
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
    };
    return { batcher, batches, openAll };
  }

  const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

  it('starts a batch one turn after its first call, with every call of that turn, and coalesces the calls that arrive meanwhile', async () => {
    const { batcher, batches, openAll } = recording();
    const first = [1, 2].map((item) => batcher.submit(item));
    expect(batches).toEqual([]);
    await nextTurn();
    expect(batches).toEqual([[1, 2]]);
    const later = [3, 4, 5, 6].map((item) => batcher.submit(item));
    await openAll();
    expect(await Promise.all([...first, ...later])).toEqual(['done 1', 'done 2', 'done 3', 'done 4', 'done 5', 'done 6']);
    expect(batches).toEqual([[1, 2], [3, 4, 5], [6]]);
  });

  it('a lone call runs in the next turn, without waiting for others', async () => {
    const { batcher, batches, openAll } = recording();
    const lone = batcher.submit(7);
    await nextTurn();
    expect(batches).toEqual([[7]]);
    await openAll();
    expect(await lone).toBe('done 7');
  });

  it('runs at most maxConcurrent batches at once', async () => {
    const { batcher, batches, openAll } = recording({ maxBatch: 2, maxConcurrent: 2 });
    const results = [1, 2, 3, 4, 5].map((item) => batcher.submit(item));
    await nextTurn();
    expect(batches).toEqual([
      [1, 2],
      [3, 4],
    ]);
    await openAll();
    await Promise.all(results);
    expect(batches).toEqual([[1, 2], [3, 4], [5]]);
  });

  it('retries a failed batch item by item: each caller gets its own result or error', async () => {
    const { batcher, batches, openAll } = recording();
    const first = batcher.submit(1);
    await nextTurn();
    const rest = [12, 13, 14].map((item) =>
      batcher.submit(item).then(
        (value) => value,
        (error: Error) => error.message,
      ),
    );
    await openAll();
    expect(await first).toBe('done 1');
    expect(await Promise.all(rest)).toEqual(['done 12', '13 refused', 'done 14']);
    expect(batches).toEqual([[1], [12, 13, 14], [12], [13], [14]]);
  });

  it('runs a failed batch again beside the next batch: the callers queued behind it do not wait for its items', async () => {
    const { batcher, batches, openAll } = recording({ maxBatch: 3, maxConcurrent: 1 });
    const first = batcher.submit(1);
    await nextTurn();
    const failing = [12, 13, 14].map((item) =>
      batcher.submit(item).then(
        (value) => value,
        (error: Error) => error.message,
      ),
    );
    const behind = [5, 6].map((item) => batcher.submit(item));
    await openAll();
    expect(await Promise.all([first, ...failing, ...behind])).toEqual(['done 1', 'done 12', '13 refused', 'done 14', 'done 5', 'done 6']);
    // [5, 6] starts as soon as [12, 13, 14] has failed, before its items run alone.
    expect(batches).toEqual([[1], [12, 13, 14], [5, 6], [12], [13], [14]]);
  });
});
