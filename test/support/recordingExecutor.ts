import { expect } from 'vitest';
import { CommandFailed, type CommandResult, type CommandSpec, type Executor } from '../../src/linux_net/command.js';

/** Which commands an answer applies to: an argv prefix, or any test on the whole spec. */
export type Match = string[] | ((spec: CommandSpec) => boolean);

/** A scripted reply; a function may also act (kill a test process) or throw. */
export type Answer = Partial<CommandResult> | ((spec: CommandSpec) => Partial<CommandResult> | Promise<Partial<CommandResult>>);

interface Rule {
  match: Match;
  answer: Answer;
  /** Uses left; undefined means forever. */
  remaining: number | undefined;
}

/**
 * The Executor of unit tests: records every command in order and answers from a
 * scripted table instead of running anything. `once` answers are used up after one
 * command and come before the lasting `on` answers, so `once(x, missing).on(x, present)`
 * scripts "absent, then there" and a `once` added later interrupts an `on` (a failure in
 * the middle of a run). Within each kind the first match, in the order added, answers.
 * Unmatched commands succeed with empty output. Accepted exit codes are honoured as by the
 * real executor: a status outside `accept` (default [0]) throws CommandFailed.
 */
export class RecordingExecutor implements Executor {
  readonly commands: CommandSpec[] = [];
  private readonly rules: Rule[] = [];

  /** Answers every matching command. */
  on(match: Match, answer: Answer): this {
    this.rules.push({ match, answer, remaining: undefined });
    return this;
  }

  /** Answers the next matching command only. */
  once(match: Match, answer: Answer): this {
    this.rules.push({ match, answer, remaining: 1 });
    return this;
  }

  async run(spec: CommandSpec): Promise<CommandResult> {
    this.commands.push(structuredClone(spec));
    const rule =
      this.rules.find((candidate) => candidate.remaining === 1 && matches(candidate.match, spec)) ??
      this.rules.find((candidate) => candidate.remaining === undefined && matches(candidate.match, spec));
    if (rule?.remaining !== undefined) rule.remaining -= 1;
    const answer = rule === undefined ? {} : typeof rule.answer === 'function' ? await rule.answer(spec) : rule.answer;
    const result: CommandResult = { code: answer.code ?? 0, stdout: answer.stdout ?? '', stderr: answer.stderr ?? '' };
    if (!(spec.accept ?? [0]).includes(result.code)) {
      throw new CommandFailed(spec.argv, result.code, result.stderr, `exit status ${result.code}`);
    }
    return result;
  }

  /** The argv of every command run so far, in order. */
  argvs(): string[][] {
    return this.commands.map((spec) => spec.argv);
  }

  /** Forgets the recorded commands (the scripted answers stay). */
  clear(): void {
    this.commands.length = 0;
  }
}

function matches(match: Match, spec: CommandSpec): boolean {
  if (typeof match === 'function') return match(spec);
  return match.length <= spec.argv.length && match.every((part, index) => spec.argv[index] === part);
}

/** A failure to start, as the real executor reports a missing binary. */
export function notInstalled(spec: CommandSpec): never {
  throw new CommandFailed(spec.argv, null, '', 'could not start (ENOENT)', true);
}

/** The rejection of `promise`, which must fail with CommandFailed (real or recorded commands alike). */
export async function commandFailure(promise: Promise<unknown>): Promise<CommandFailed> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(CommandFailed);
  return error as CommandFailed;
}
