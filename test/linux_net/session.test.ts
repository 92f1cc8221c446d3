import { afterEach, describe, expect, it } from 'vitest';
import type { CommandSpec } from '../../src/linux_net/command.js';
import { type ProcessExecutor, processExecutor } from '../../src/linux_net/executor.js';
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

/** The same tool's way of applying one input on its own: it prints each line with its pid. */
const ONE_SHOT = ['sh', '-c', 'while IFS= read -r line; do echo "alone $$: $line"; done'];

const spec = (input: string, failsOnStderr = true, argv = ['sh', '-c', TOOL]): CommandSpec => ({
  argv,
  input,
  session: { probe: 'probe', failsOnStderr, oneShot: ONE_SHOT },
});

let executor: ProcessExecutor;
let logged: { event: string; fields?: Record<string, unknown> }[] = [];
afterEach(() => executor.close());

function start(options: { defaultTimeoutMs?: number } = {}): ProcessExecutor {
  logged = [];
  executor = processExecutor({ rootHelper: [], ...options, log: (event, fields) => logged.push({ event, ...(fields ? { fields } : {}) }) });
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
    expect(error.message).toBe(`sh -c ${TOOL}: input refused: refused: refuse x`);
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

  it('ignores what a tool prints on stderr as it starts (a root_helper notice)', async () => {
    start();
    const noisy = ['sh', '-c', `echo "sudo: unable to resolve host" >&2\n${TOOL}`];
    expect(await executor.run(spec('say a\n', true, noisy))).toEqual({ code: 0, stdout: 'say a\n', stderr: '' });
  });

  it('runs each input on its own where the tool cannot be kept running, and says so once', async () => {
    start();
    // As nft built without its interactive mode: it exits at once.
    const refusing = ['sh', '-c', 'echo "Error: interactive CLI not supported in this build" >&2; exit 1'];
    const first = await executor.run(spec('x 1\n', true, refusing));
    const second = await executor.run(spec('x 2\n', true, refusing));
    expect(first.stdout).toMatch(/^alone \d+: x 1\n$/);
    expect(second.stdout).toMatch(/^alone \d+: x 2\n$/);
    expect(first.stdout.split(':')[0]).not.toBe(second.stdout.split(':')[0]);
    expect(logged).toEqual([
      {
        event: 'command.session_unavailable',
        fields: {
          command: refusing.join(' '),
          error: `${refusing.join(' ')}: exit status 1: Error: interactive CLI not supported in this build`,
          instead: ONE_SHOT.join(' '),
        },
      },
    ]);
    // Nothing to apply, nothing run.
    expect(await executor.run(spec('', true, refusing))).toEqual({ code: 0, stdout: '', stderr: '' });
  });

  it('runs each input on its own where the tool never answers its probe', async () => {
    start();
    const silent = ['sh', '-c', 'cat > /dev/null'];
    expect((await executor.run({ ...spec('x\n', true, silent), timeoutMs: 300 })).stdout).toMatch(/^alone \d+: x\n$/);
    expect(logged.map((entry) => entry.fields?.error)).toEqual([`${silent.join(' ')}: timed out after 300 ms`]);
  });

  it('reports a tool missing altogether as the command that applies one input would', async () => {
    start();
    const missing = {
      argv: ['novanet-no-such-tool'],
      input: 'x\n',
      session: { probe: 'probe', failsOnStderr: true, oneShot: ['novanet-no-such-tool', '-f'] },
    };
    expect((await commandFailure(executor.run(missing))).message).toBe('novanet-no-such-tool -f: could not start (ENOENT)');
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

  it('after close, each input runs on its own: no process is left behind', async () => {
    start();
    await pid();
    executor.close();
    expect((await executor.run(spec('say late\n'))).stdout).toMatch(/^alone \d+: say late\n$/);
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
