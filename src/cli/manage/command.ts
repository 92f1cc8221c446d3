import type { OptionDefs, Parsed } from '../args.js';
import type { Context, Io } from '../run.js';

/** One `novanet-manage CATEGORY ACTION`: its options, help and work. */
export interface Command {
  usage: string;
  summary: string;
  options: OptionDefs;
  /** Commands that need no manager (none so far) could take the raw context. */
  run(parsed: Parsed, context: Context, io: Io): Promise<number | void>;
}

export type Category = Record<string, Command>;
