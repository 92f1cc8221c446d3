import { describe, expect, it } from 'vitest';
import { Unavailable } from '../../src/errors.js';
import { CommandFailed, jsonOutput } from '../../src/linux_net/command.js';

describe('jsonOutput', () => {
  const argv = ['ip', '-j', 'addr', 'show', 'dev', 'br100'];

  it('parses what the command printed, and gives `empty` when it printed nothing', () => {
    expect(jsonOutput(argv, { code: 0, stdout: '[{"ifname":"br100"}]', stderr: '' }, [])).toEqual([{ ifname: 'br100' }]);
    expect(jsonOutput(argv, { code: 0, stdout: '', stderr: '' }, [])).toEqual([]);
  });

  it('reports output that is not JSON as the command failing (an outage, with its stderr), not a SyntaxError', () => {
    const read = () => jsonOutput(argv, { code: 0, stdout: 'br100: <UP>', stderr: 'Warning: old kernel\n' }, []);
    expect(read).toThrow(CommandFailed);
    expect(read).toThrow(Unavailable);
    expect(read).toThrow(/^ip -j addr show dev br100: output is not JSON \(.*\): Warning: old kernel$/);
  });
});
