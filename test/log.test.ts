/** The service's stderr: JSON log lines, those of one event-loop turn written together. */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { coalesced, jsonLogger } from '../src/log.js';

describe('coalesced log writes', () => {
  it('writes the lines of one event-loop turn as one write, in order, and nothing when idle', async () => {
    const writes: string[] = [];
    const log = jsonLogger(coalesced((text) => writes.push(text)));
    log('a', { n: 1 });
    log('b', { n: 2 });
    expect(writes).toEqual([]);
    await nextTurn();
    expect(writes).toHaveLength(1);
    expect(
      writes[0]!
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as { event: string; n: number })
        .map(({ event, n }) => [event, n]),
    ).toEqual([
      ['a', 1],
      ['b', 2],
    ]);
    await nextTurn();
    log('c');
    await nextTurn();
    await nextTurn();
    expect(writes).toHaveLength(2);
    expect(writes[1]).toMatch(/^\{"time":"[^"]+","event":"c"\}\n$/);
  });

  it('writes what is pending when the process exits', () => {
    const writes: string[] = [];
    let atExit: () => void = () => undefined;
    const write = coalesced(
      (text) => writes.push(text),
      (flush) => {
        atExit = flush;
      },
    );
    write('last words\n');
    atExit();
    expect(writes).toEqual(['last words\n']);
  });
});
