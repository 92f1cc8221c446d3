import { afterEach, describe, expect, it } from 'vitest';
import { processExecutor, type CommandSpec, type ProcessExecutor } from '../../src/linux_net/executor.js';
import { INPUTS_PER_PROCESS } from '../../src/linux_net/session.js';
import { commandFailure } from '../support/recordingExecutor.js';

/**
 * A stand-in tool with the sessions' protocol: it answers the probe line the same way
 * each time, prints its pid, echoes, refuses on stderr and goes on, dies, or hangs.
 */
const TOOL = [
  'while IFS= read -r line; do',
  '  case "$line" in',
  '    probe) echo ready ;;',
  '    pid) echo "$$" ;;',
  '    say*) echo "$line" ;;',
  '    refuse*) echo "refused: $line" >&2 ;;',
  '    die*) echo "dying at $line" >&2; exit 3 ;;',
  '    hang) sleep 5 ;;',
  '  esac',
  'done',
].join('\n');

const spec = (input: string, failsOnStderr = true): CommandSpec => ({ argv: ['sh', '-c', TOOL], input, session: { probe: 'probe', failsOnStderr } });

let executor: ProcessExecutor;
afterEach(() => executor.close());

function start(options: { defaultTimeoutMs?: number } = {}): ProcessExecutor {
  executor = processExecutor({ rootHelper: [], ...options });
  return executor;
}

async function pid(): Promise<number> {
  return Number((await executor.run(spec('pid\n'))).stdout);
}


describe('tool sessions (CommandSpec.session)', () => {
  it('sends every input to one process and returns what it printed for each', async () => {
    start();
    const first = await pid();
    expect(await executor.run(spec('say a\nsay b\n'))).toEqual({ code: 0, stdout: 'say a\nsay b\n', stderr: '' });
    expect(await executor.run(spec('say c\n'))).toEqual({ code: 0, stdout: 'say c\n', stderr: '' });
    expect(await pid()).toBe(first);
  });

  it('takes inputs one at a time, in the order given', async () => {
    start();
    const results = await Promise.all(['say 1\n', 'say 2\n', 'say 3\n'].map((input) => executor.run(spec(input))));
    expect(results.map((result) => result.stdout)).toEqual(['say 1\n', 'say 2\n', 'say 3\n']);
  });

  it('fails an input the tool refuses on stderr, and the process goes on', async () => {
    start();
    const first = await pid();
    const error = await commandFailure(executor.run(spec('refuse x\n')));
    expect(error.message).toBe('sh -c ' + TOOL + ': input refused: refused: refuse x');
    expect(error.stderr).toBe('refused: refuse x\n');
    expect(await pid()).toBe(first);
  });

  it('returns stderr as output when the tool fails by exiting instead', async () => {
    start();
    expect(await executor.run(spec('refuse x\nsay y\n', false))).toEqual({ code: 0, stdout: 'say y\n', stderr: 'refused: refuse x\n' });
  });

  it('fails the input a tool exits at, with its status and stderr; the next input starts a new process', async () => {
    start();
    const first = await pid();
    const error = await commandFailure(executor.run(spec('die now\n')));
    expect(error.code).toBe(3);
    expect(error.message).toMatch(/: exit status 3: dying at die now$/);
    const second = await pid();
    expect(second).not.toBe(first);
  });

  it('kills a process that does not answer within the timeout; the next input starts a new one', async () => {
    start();
    const first = await pid();
    const started = Date.now();
    const error = await commandFailure(executor.run({ ...spec('hang\n'), timeoutMs: 200 }));
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(error.message).toMatch(/: timed out after 200 ms$/);
    expect(await pid()).not.toBe(first);
  });

  it('reports a tool that cannot start', async () => {
    start();
    const error = await commandFailure(executor.run({ argv: ['novanet-no-such-tool'], input: 'x\n', session: { probe: 'probe', failsOnStderr: true } }));
    expect(error.message).toBe('novanet-no-such-tool: could not start (ENOENT)');
  });

  it(`replaces its process after ${INPUTS_PER_PROCESS} inputs (nft -i keeps a history of each)`, async () => {
    start();
    const first = await pid();
    for (let input = 1; input < INPUTS_PER_PROCESS - 1; input++) await executor.run(spec(''));
    expect(await pid()).toBe(first);
    const second = await pid();
    expect(second).not.toBe(first);
  });

  it('close ends an idle process: its stdin closes and it exits', async () => {
    start();
    const first = await pid();
    executor.close();
    await expect.poll(() => alive(first), { timeout: 5_000 }).toBe(false);
  });

  it('close fails the input in progress and those queued behind it', async () => {
    start();
    await pid();
    const hanging = commandFailure(executor.run(spec('hang\n')));
    const queued = commandFailure(executor.run(spec('say late\n')));
    await new Promise((resolve) => setTimeout(resolve, 100));
    executor.close();
    expect((await hanging).message).toMatch(/: session closed$/);
    expect((await queued).message).toMatch(/: session closed$/);
  });

  it('one session per command line: root_helper and argv tell them apart', async () => {
    start();
    const plain = await pid();
    const helped = processExecutor({ rootHelper: ['env', 'NOVANET_X=1'] });
    try {
      const other = Number((await helped.run(spec('pid\n'))).stdout);
      expect(other).not.toBe(plain);
      expect(await pid()).toBe(plain);
    } finally {
      helped.close();
    }
  });
});

function alive(processId: number): boolean {
  try {
    process.kill(processId, 0);
    return true;
  } catch {
    return false;
  }
}
