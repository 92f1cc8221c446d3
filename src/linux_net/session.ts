import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { CommandFailed, type CommandResult, type SessionSpec } from './command.js';

/**
 * Inputs one process takes before the next input starts a fresh one: `nft -i` keeps
 * every line it reads in its history, so a process that lived for ever would grow.
 */
export const INPUTS_PER_PROCESS = 1000;

/** A tool that has not answered its first probe by then cannot be kept running (a healthy one answers at once). */
const START_TIMEOUT_MS = 5_000;

interface Pending {
  resolve: (result: CommandResult) => void;
  reject: (error: CommandFailed) => void;
}

/**
 * One tool kept running that reads inputs on stdin and applies each as it comes (`nft
 * -i`, `iptables-restore`): a change then costs the tool's own work instead of a
 * process started through root_helper (docs/decisions/firewall-sessions.md). After each input goes the spec's
 * probe line, whose answer (learned once, when the process starts) marks the input
 * done. One input at a time; a process that exits or fails is replaced at the next input.
 * A tool whose start fails is `unavailable`: the executor then runs each input on its own.
 */
export class ToolSession {
  private child: ChildProcessWithoutNullStreams | undefined;
  /** The probe's answer, as the tool printed it at start. */
  private answer = '';
  private inputs = 0;
  private stdout = '';
  private stderr = '';
  private pending: Pending | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** Why the tool could not be kept running: its start failed (it exited or did not answer the probe). */
  unavailable: CommandFailed | undefined;

  constructor(
    private readonly argv: string[],
    private readonly spec: SessionSpec,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  /** Sends `input` (whole lines) and resolves with what the tool printed for it. */
  run(input: string, timeoutMs: number): Promise<CommandResult> {
    const next = this.queue.then(async () => {
      if (this.closed) throw new CommandFailed(this.argv, null, '', 'session closed');
      if (this.unavailable) throw this.unavailable;
      if (this.child && this.inputs >= INPUTS_PER_PROCESS) this.end();
      const child = this.child ?? (await this.start(timeoutMs));
      this.inputs++;
      return this.exchange(child, input, timeoutMs);
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Ends the session: inputs in progress or queued fail, and the process ends. */
  close(): void {
    this.closed = true;
    this.end();
  }

  /** stdin closes and the tool exits by itself, as at the end of a file. */
  private end(): void {
    if (this.child) this.ended(this.child, null, 'session closed');
  }

  /** A new process, once it has answered the probe (its answer learned; anything on stderr ignored). */
  private async start(timeoutMs: number): Promise<ChildProcessWithoutNullStreams> {
    const child = spawn(this.argv[0]!, this.argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env: this.env });
    this.child = child;
    this.inputs = 0;
    this.answer = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      if (this.child !== child) return;
      this.stdout += chunk;
      this.answered();
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      if (this.child === child) this.stderr += chunk;
    });
    child.on('error', (error: NodeJS.ErrnoException) => this.ended(child, null, `could not start (${error.code ?? error.message})`));
    // 'close', not 'exit': the tool's last words on stderr are read by then.
    child.on('close', (code, signal) =>
      this.ended(child, code, code === null ? `killed by ${signal ?? 'a signal'}` : `exit status ${code}`),
    );
    child.stdin.on('error', () => undefined);
    // A session never keeps the service from exiting; at exit its stdin closes and it ends.
    child.unref();
    for (const stream of [child.stdin, child.stdout, child.stderr]) (stream as unknown as { unref?: () => void }).unref?.();
    try {
      this.answer = (await this.exchange(child, '', Math.min(timeoutMs, START_TIMEOUT_MS))).stdout;
    } catch (error) {
      this.end();
      if (!this.closed) this.unavailable = error as CommandFailed;
      throw error;
    }
    return child;
  }

  /** Writes `input` and the probe; settles when the probe's answer comes back (or the process ends). */
  private exchange(child: ChildProcessWithoutNullStreams, input: string, timeoutMs: number): Promise<CommandResult> {
    // It may have ended since its last answer (an exit, close): the next input starts another.
    if (this.child !== child) return Promise.reject(new CommandFailed(this.argv, null, this.stderr, 'ended before the input'));
    return new Promise<CommandResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.ended(child, null, `timed out after ${timeoutMs} ms`);
        child.kill('SIGKILL');
      }, timeoutMs);
      this.stdout = '';
      this.stderr = '';
      this.pending = {
        resolve: (result) => {
          clearTimeout(timer);
          resolve(result);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      child.stdin.write(`${input}${this.spec.probe}\n`);
    });
  }

  /**
   * The probe's answer (at start: its first whole line) ends the current input. The
   * tool wrote any error to stderr before the answer to stdout; both pipes are read in
   * the same turn of the event loop, so the result waits one turn (setImmediate).
   */
  private answered(): void {
    const pending = this.pending;
    if (!pending) return;
    const learning = this.answer === '';
    const done = learning ? this.stdout.includes('\n') : this.stdout.endsWith(this.answer);
    if (!done) return;
    this.pending = undefined;
    setImmediate(() => {
      const stdout = learning ? this.stdout : this.stdout.slice(0, -this.answer.length);
      const stderr = this.stderr;
      // Refused, and the tool goes on: the process stays for the next input. (While the
      // answer is learned, stderr is a root_helper's or the tool's start-up notice.)
      if (learning || !this.spec.failsOnStderr || stderr.trim() === '') pending.resolve({ code: 0, stdout, stderr });
      else pending.reject(new CommandFailed(this.argv, 1, stderr, 'input refused'));
    });
  }

  /**
   * The process ended, failed to start, timed out or is let go: the input in progress
   * fails, and the next starts a new process. Its stdin closes, which ends a tool still
   * running (also behind a root_helper such as sudo, which a kill would not reach).
   */
  private ended(child: ChildProcessWithoutNullStreams, code: number | null, reason: string): void {
    if (this.child !== child) return;
    this.child = undefined;
    child.stdin.destroy();
    const pending = this.pending;
    this.pending = undefined;
    pending?.reject(new CommandFailed(this.argv, code, this.stderr || this.stdout, reason));
  }
}
