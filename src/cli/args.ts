import { Invalid } from '../errors.js';
import { booleanText, integerText, quote } from '../fields.js';

/** A mistake in how a command was typed (exit status 2, like argparse). */
export class UsageError extends Invalid {}

export type OptionType = 'string' | 'int' | 'bool' | 'flag';

export interface OptionDef {
  type: OptionType;
  help: string;
  /** Placeholder shown in help, e.g. CIDR. */
  meta?: string;
}

export type OptionDefs = Record<string, OptionDef>;

export type ParsedValue = string | number | boolean;

export interface Parsed {
  options: Map<string, ParsedValue>;
  positionals: string[];
}

/**
 * nova-manage's command-line conventions: `--name=value` or `--name value`, and
 * `-` and `_` interchangeable in option names (nova mixed both). Every mistake gets
 * its own message: unknown option (with the nearest known one), missing value,
 * repeated option, bad number or boolean.
 */
export function parseArgs(argv: string[], defs: OptionDefs, command: string): Parsed {
  const options = new Map<string, ParsedValue>();
  const positionals: string[] = [];
  for (let index = 0; index < argv.length; index++) {
    const token = argv[index]!;
    if (token === '--') {
      positionals.push(...argv.slice(index + 1));
      break;
    }
    if (!token.startsWith('--') || token === '-') {
      if (token.startsWith('-') && token.length > 1 && !/^-\d/.test(token)) {
        throw new UsageError(`${command}: unknown option ${quote(token)} (options are spelled --name)`);
      }
      positionals.push(token);
      continue;
    }
    const eq = token.indexOf('=');
    const rawName = token.slice(2, eq === -1 ? undefined : eq);
    const name = rawName.replace(/-/g, '_');
    const def = defs[name];
    if (!def) {
      const hint = nearest(name, Object.keys(defs));
      throw new UsageError(`${command}: unknown option --${rawName}${hint ? `; did you mean --${hint}?` : ''}`);
    }
    if (options.has(name)) throw new UsageError(`${command}: --${name} given more than once`);
    let value: string | undefined;
    if (def.type === 'flag') {
      if (eq !== -1) throw new UsageError(`${command}: --${name} takes no value`);
      options.set(name, true);
      continue;
    }
    if (eq !== -1) value = token.slice(eq + 1);
    else if (index + 1 < argv.length && !argv[index + 1]!.startsWith('--')) value = argv[++index];
    if (value === undefined || value === '') throw new UsageError(`${command}: --${name} needs a value${def.meta ? ` (${def.meta})` : ''}`);
    options.set(name, convert(value, def, `${command}: --${name}`));
  }
  return { options, positionals };
}

function convert(value: string, def: OptionDef, label: string): ParsedValue {
  if (def.type === 'int') {
    const parsed = integerText(value);
    if (parsed === undefined) throw new UsageError(`${label} must be a whole number, got ${quote(value)}`);
    return parsed;
  }
  if (def.type === 'bool') {
    const parsed = booleanText(value);
    if (parsed === undefined) throw new UsageError(`${label} must be T or F (true/false), got ${quote(value)}`);
    return parsed;
  }
  return value;
}

/** The closest known name within edit distance 3, for "did you mean". */
function nearest(name: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 4;
  for (const candidate of known) {
    const distance = editDistance(name, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/** Typed accessors, so command code reads like nova-manage's keyword arguments. */
export function stringOption(parsed: Parsed, name: string): string | undefined {
  const value = parsed.options.get(name);
  return value === undefined ? undefined : String(value);
}

export function intOption(parsed: Parsed, name: string): number | undefined {
  const value = parsed.options.get(name);
  return typeof value === 'number' ? value : undefined;
}

export function boolOption(parsed: Parsed, name: string): boolean | undefined {
  const value = parsed.options.get(name);
  return typeof value === 'boolean' ? value : undefined;
}

/**
 * nova-manage took the object of a command as an option or as the one positional
 * (`fixed reserve --address=IP` or `fixed reserve IP`): exactly one of them.
 */
export function optionOrPositional(parsed: Parsed, option: string, meta: string, command: string): string {
  noMorePositionals(parsed, 1, command);
  const given = [stringOption(parsed, option), parsed.positionals[0]].filter((value) => value !== undefined);
  if (given.length !== 1) throw new UsageError(`${command}: give the ${option} once, as --${option}=${meta}`);
  return given[0]!;
}

/** Refuses positionals a command does not take. */
export function noMorePositionals(parsed: Parsed, max: number, command: string): void {
  if (parsed.positionals.length > max) {
    throw new UsageError(`${command}: unexpected argument ${quote(parsed.positionals[max]!)}`);
  }
}

export function helpText(usage: string, summary: string, defs: OptionDefs): string {
  const lines = [`usage: ${usage}`, '', summary];
  const names = Object.keys(defs);
  if (names.length > 0) {
    lines.push('', 'options:');
    for (const name of names) {
      const def = defs[name]!;
      const left = `  --${name}${def.type === 'flag' ? '' : `=${def.meta ?? def.type.toUpperCase()}`}`;
      lines.push(`${left.padEnd(34)}${def.help}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
