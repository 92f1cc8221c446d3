import { Unavailable } from '../errors.js';

/**
 * Commands as values: what one external command is, what it returns, and how it fails.
 * Drivers build these; one executor runs them (executor.ts, or a recording fake in tests).
 */

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

/** A command failed, timed out or could not start; carries its stderr for the log. */
export class CommandFailed extends Unavailable {
  constructor(
    readonly argv: string[],
    readonly code: number | null,
    readonly stderr: string,
    reason: string,
    /** The program was not found: the tool is not installed (its package is missing). */
    readonly notInstalled = false,
  ) {
    super(`${argv.join(' ')}: ${reason}${stderr.trim() ? `: ${stderr.trim().split('\n').slice(-3).join(' | ')}` : ''}`);
  }
}

/**
 * A command's JSON output (`ip -j`) as T; `empty` when it printed nothing. Output that
 * is not JSON is the tool failing, reported like its other failures (CommandFailed,
 * naming the command), not a SyntaxError from inside a driver.
 */
export function jsonOutput<T>(argv: string[], result: CommandResult, empty: T): T {
  if (result.stdout === '') return empty;
  try {
    return JSON.parse(result.stdout) as T;
  } catch (error) {
    throw new CommandFailed(argv, result.code, result.stderr, `output is not JSON (${(error as Error).message})`);
  }
}
