import { describe, expect, it } from 'vitest';
import { Unavailable } from '../../src/errors.js';
import { processExecutor } from '../../src/linux_net/executor.js';
import { commandFailure } from '../support/recordingExecutor.js';

const plain = processExecutor({ rootHelper: [] });

describe('processExecutor', () => {
  it('runs an argument array and returns status and output', async () => {
    expect(await plain.run({ argv: ['sh', '-c', 'echo out; echo err >&2'] })).toEqual({ code: 0, stdout: 'out\n', stderr: 'err\n' });
    expect(await plain.run({ argv: ['true'] })).toEqual({ code: 0, stdout: '', stderr: '' });
  });

  it('passes arguments verbatim, never through a shell', async () => {
    const result = await plain.run({ argv: ['printf', '%s|', 'a b', '$HOME', ';reboot'] });
    expect(result.stdout).toBe('a b|$HOME|;reboot|');
  });

  it('prefixes root_helper to privileged commands (the default)', async () => {
    const helped = processExecutor({ rootHelper: ['env', 'FOO=1'] });
    expect((await helped.run({ argv: ['sh', '-c', 'echo $FOO'] })).stdout).toBe('1\n');
    const error = await commandFailure(helped.run({ argv: ['false'] }));
    expect(error.argv).toEqual(['env', 'FOO=1', 'false']);
  });

  it('skips root_helper for privileged: false', async () => {
    const helped = processExecutor({ rootHelper: ['env', 'FOO=1'] });
    expect((await helped.run({ argv: ['sh', '-c', 'echo "[$FOO]"'], privileged: false })).stdout).toBe('[]\n');
  });

  it('fails on a status not accepted, with the status and stderr in the message', async () => {
    const error = await commandFailure(plain.run({ argv: ['sh', '-c', 'echo x >&2; exit 3'] }));
    expect(error.code).toBe(3);
    expect(error.stderr).toBe('x\n');
    expect(error.message).toBe('sh -c echo x >&2; exit 3: exit status 3: x');
    expect(error).toBeInstanceOf(Unavailable);
    expect((await commandFailure(plain.run({ argv: ['false'] }))).message).toBe('false: exit status 1');
  });

  it('keeps the last three lines of a long stderr', async () => {
    const error = await commandFailure(plain.run({ argv: ['sh', '-c', 'printf "1\\n2\\n3\\n4\\n" >&2; exit 1'] }));
    expect(error.message).toBe('sh -c printf "1\\n2\\n3\\n4\\n" >&2; exit 1: exit status 1: 2 | 3 | 4');
  });

  it('returns an accepted non-zero status as a result', async () => {
    expect(await plain.run({ argv: ['sh', '-c', 'exit 2'], accept: [0, 2, 254] })).toEqual({ code: 2, stdout: '', stderr: '' });
    expect((await plain.run({ argv: ['sh', '-c', 'exit 254'], accept: [0, 2, 254] })).code).toBe(254);
    expect((await commandFailure(plain.run({ argv: ['true'], accept: [1] }))).code).toBe(0);
  });

  it('writes input to stdin', async () => {
    expect((await plain.run({ argv: ['cat'], input: '*nat\nCOMMIT\n' })).stdout).toBe('*nat\nCOMMIT\n');
  });

  it('gives stdin EOF when there is no input', async () => {
    expect((await plain.run({ argv: ['cat'] })).stdout).toBe('');
  });

  it('kills a command that outlives its timeout and says so', async () => {
    const started = Date.now();
    const error = await commandFailure(plain.run({ argv: ['sleep', '5'], timeoutMs: 200 }));
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(error.message).toBe('sleep 5: timed out after 200 ms');
  });

  it('applies the default timeout', async () => {
    const short = processExecutor({ rootHelper: [], defaultTimeoutMs: 150 });
    expect((await commandFailure(short.run({ argv: ['sleep', '5'] }))).message).toBe('sleep 5: timed out after 150 ms');
  });

  it('reports a command killed by a signal', async () => {
    const error = await commandFailure(plain.run({ argv: ['sh', '-c', 'kill -TERM $$'] }));
    expect(error.code).toBeNull();
    expect(error.message).toBe('sh -c kill -TERM $$: killed by SIGTERM');
  });

  it('reports a missing binary as "could not start (ENOENT)", flagged as not installed', async () => {
    const error = await commandFailure(plain.run({ argv: ['novanet-no-such-binary', '--help'] }));
    expect(error.code).toBeNull();
    expect(error.notInstalled).toBe(true);
    expect(error.message).toBe('novanet-no-such-binary --help: could not start (ENOENT)');
    expect((await commandFailure(plain.run({ argv: ['false'] }))).notInstalled).toBe(false);
    // The root_helper's own absence is reported the same way.
    const helped = processExecutor({ rootHelper: ['novanet-no-such-helper'] });
    expect((await commandFailure(helped.run({ argv: ['true'] }))).message).toBe('novanet-no-such-helper true: could not start (ENOENT)');
  });

  it('refuses an empty command', async () => {
    expect((await commandFailure(plain.run({ argv: [] }))).message).toBe(': empty command');
  });

  it('adds env to the inherited environment', async () => {
    const result = await plain.run({
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell expansion, for sh
      argv: ['sh', '-c', 'echo "$NOVANET_A $NOVANET_B ${PATH:+path}"'],
      env: { NOVANET_A: 'a', NOVANET_B: 'b c' },
    });
    expect(result.stdout).toBe('a b c path\n');
  });
});
