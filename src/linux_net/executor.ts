import { spawn } from 'node:child_process';
import { CommandFailed, type CommandResult, type CommandSpec, type Executor, type SessionSpec } from './command.js';
import { ToolSession } from './session.js';

/** The real executor, which also ends the tools it keeps running. */
export interface ProcessExecutor extends Executor {
  close(): void;
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
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        stdout += chunk;
      });
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
        stderr += chunk;
      });
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, timeoutMs);
      child.on('error', (error) => {
        clearTimeout(timer);
        const code = (error as NodeJS.ErrnoException).code;
        reject(new CommandFailed(argv, null, stderr, `could not start (${code ?? error.message})`, code === 'ENOENT'));
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
        options.log?.('command.session_unavailable', {
          command: argv.join(' '),
          error: (error as Error).message,
          instead: spec.session.oneShot.join(' '),
        });
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
