import { spawn } from 'node:child_process';
import { Unavailable } from '../errors.js';
import { ToolSession } from './session.js';

/** One external command: an argument array, never a shell string. */
export interface CommandSpec {
  argv: string[];
  /** Exit codes that count as success (nova accepted 2 and 254 for idempotent `ip` calls). */
  accept?: number[];
  timeoutMs?: number;
  /** Written to the command's stdin (iptables-restore input, nft scripts). */
  input?: string;
  env?: Record<string, string>;
  /** Prefix with root_helper (default). Reading our own state files needs no privilege. */
  privileged?: boolean;
  /**
   * Keep the command running and send it `input` (whole lines): one process serves every
   * call with the same argv (session.ts). Its result's code is always 0.
   */
  session?: SessionSpec;
}

/** How a tool kept running tells that an input is done, and how it reports a failure. */
export interface SessionSpec {
  /** A line sent after each input that the tool answers the same way every time. */
  probe: string;
  /** A refused input shows on stderr and the tool goes on (nft -i); otherwise the tool exits (iptables-restore). */
  failsOnStderr: boolean;
  /**
   * The command that applies one input on its own, where the tool cannot be kept running
   * (an nft built without its interactive mode; an iptables-restore that does not flush
   * what -v echoes).
   */
  oneShot: string[];
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Every command novanet runs goes through one of these. */
export interface Executor {
  run(spec: CommandSpec): Promise<CommandResult>;
}

/** The real executor, which also ends the tools it keeps running. */
export interface ProcessExecutor extends Executor {
  close(): void;
}

/** A command failed, timed out or could not start; carries its stderr for the log. */
export class CommandFailed extends Unavailable {
  constructor(
    readonly argv: string[],
    readonly code: number | null,
    readonly stderr: string,
    reason: string,
  ) {
    super(`${argv.join(' ')}: ${reason}${stderr.trim() ? `: ${stderr.trim().split('\n').slice(-3).join(' | ')}` : ''}`);
  }
}

export interface ProcessExecutorOptions {
  /** Config's root_helper, e.g. ['sudo'] or ['ip', 'netns', 'exec', 'lab-net']. */
  rootHelper: string[];
  defaultTimeoutMs?: number;
  /** Where a tool that cannot be kept running is reported (once; its inputs then run one by one). */
  log?: (event: string, fields?: Record<string, unknown>) => void;
}

/** Runs commands as child processes, with root_helper, a timeout and accepted exit codes. */
export function processExecutor(options: ProcessExecutorOptions): ProcessExecutor {
  const defaultTimeout = options.defaultTimeoutMs ?? 30_000;
  const sessions = new Map<string, ToolSession>();
  let closed = false;

  /** One process for the command, run to its end. */
  function once(spec: CommandSpec, argv: string[], env: NodeJS.ProcessEnv): Promise<CommandResult> {
    const accept = spec.accept ?? [0];
    const timeoutMs = spec.timeoutMs ?? defaultTimeout;
    return new Promise((resolve, reject) => {
      const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env });
      let stdout = '';
      let stderr = '';
      let timedOut = false;
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk; });
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, timeoutMs);
      child.on('error', (error) => {
        clearTimeout(timer);
        reject(new CommandFailed(argv, null, stderr, `could not start (${(error as NodeJS.ErrnoException).code ?? error.message})`));
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        if (timedOut) return reject(new CommandFailed(argv, code, stderr, `timed out after ${timeoutMs} ms`));
        if (code === null) return reject(new CommandFailed(argv, null, stderr, `killed by ${signal ?? 'a signal'}`));
        if (!accept.includes(code)) return reject(new CommandFailed(argv, code, stderr, `exit status ${code}`));
        resolve({ code, stdout, stderr });
      });
      child.stdin.on('error', () => undefined);
      child.stdin.end(spec.input ?? '');
    });
  }

  /**
   * Through the tool's session; where the tool cannot be kept running (its start
   * failed), or after close, each input runs on its own as `oneShot`.
   */
  async function inSession(spec: CommandSpec & { session: SessionSpec }, argv: string[], env: NodeJS.ProcessEnv): Promise<CommandResult> {
    const key = argv.join('\0');
    let session = sessions.get(key);
    if (!session && !closed) sessions.set(key, (session = new ToolSession(argv, spec.session, env)));
    if (session && !session.unavailable) {
      try {
        return await session.run(spec.input ?? '', spec.timeoutMs ?? defaultTimeout);
      } catch (error) {
        if (!session.unavailable) throw error;
        options.log?.('command.session_unavailable', { command: argv.join(' '), error: (error as Error).message, instead: spec.session.oneShot.join(' ') });
      }
    }
    if ((spec.input ?? '') === '') return { code: 0, stdout: '', stderr: '' };
    const { session: _session, ...alone } = spec;
    return once(alone, [...argv.slice(0, argv.length - spec.argv.length), ...spec.session.oneShot], env);
  }

  return {
    close() {
      closed = true;
      for (const session of sessions.values()) session.close();
      sessions.clear();
    },
    run(spec) {
      if (spec.argv.length === 0) return Promise.reject(new CommandFailed([], null, '', 'empty command'));
      const argv = spec.privileged === false ? spec.argv : [...options.rootHelper, ...spec.argv];
      const env = spec.env ? { ...process.env, ...spec.env } : process.env;
      return spec.session ? inSession({ ...spec, session: spec.session }, argv, env) : once(spec, argv, env);
    },
  };
}
