import { z } from 'zod';
import { Invalid } from '../errors.js';
import { booleanText, integerText } from '../fields.js';

/**
 * Request bodies are checked against a zod schema at the edge, once. A failure
 * becomes one Invalid (400 badRequest) whose message names the field and the rule,
 * e.g. `network.vlan must be an integer from 1 to 4094, got "x"`.
 */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  const result = schema.safeParse(body, { error: describeIssue });
  if (result.success) return result.data;
  const [first] = result.error.issues;
  throw new Invalid(first ? `${fieldName(first.path)} ${first.message}` : 'the request body is not valid');
}

function fieldName(path: readonly PropertyKey[]): string {
  if (path.length === 0) return 'the request body';
  return path.map((part, index) => (typeof part === 'number' ? `[${part}]` : `${index === 0 ? '' : '.'}${String(part)}`)).join('');
}

const EXPECTED: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  object: 'an object',
  array: 'a list',
  null: 'null',
};

/** What a JSON value is, for "got ..." in messages (never the value itself: it may be huge). */
export function jsonKind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return 'a string';
  if (typeof value === 'number') return Number.isInteger(value) ? 'an integer' : 'a number';
  if (typeof value === 'boolean') return 'a boolean';
  return typeof value;
}

/** zod's per-parse error map: the rule, in words; the field is prefixed by parseBody. */
function describeIssue(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'is required';
      return `must be ${EXPECTED[issue.expected] ?? issue.expected}, got ${jsonKind(issue.input)}`;
    case 'unrecognized_keys':
      return `has unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((key) => JSON.stringify(key.slice(0, 40))).join(', ')}`;
    case 'too_big':
      return issue.origin === 'string'
        ? `must be at most ${String(issue.maximum)} characters`
        : `must have at most ${String(issue.maximum)} entries`;
    case 'too_small':
      return issue.origin === 'string' ? 'must not be empty' : `must have at least ${String(issue.minimum)} entries`;
    default:
      return undefined;
  }
}

/** A value in a message: a short scalar as it was sent, anything else by its kind (never walked: it may be huge or deep). */
function shown(value: unknown): string {
  if (typeof value === 'object' && value !== null) return jsonKind(value);
  const text = typeof value === 'string' ? JSON.stringify(value.slice(0, 40)) : String(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

/**
 * An integer given as a JSON number or a string of digits (Nova's
 * positive_integer_with_empty_str); null and "" mean "not given".
 */
export function integerLike(min: number, max: number) {
  return z
    .unknown()
    .transform((value, ctx): number | undefined => {
      if (value === undefined || value === null || value === '') return undefined;
      const number = typeof value === 'string' ? integerText(value) : value;
      if (typeof number === 'number' && Number.isSafeInteger(number) && number >= min && number <= max) return number;
      ctx.addIssue({ code: 'custom', message: `must be an integer from ${min} to ${max}, got ${shown(value)}` });
      return z.NEVER;
    })
    .optional();
}

/** A boolean as JSON true/false or one of Nova's strings ("True", "1", "off", ...); null means "not given". */
export function booleanLike() {
  return z
    .unknown()
    .transform((value, ctx): boolean | undefined => {
      if (value === undefined || value === null) return undefined;
      if (typeof value === 'boolean') return value;
      const parsed = typeof value === 'string' ? booleanText(value) : undefined;
      if (parsed !== undefined) return parsed;
      ctx.addIssue({ code: 'custom', message: `must be true or false, got ${shown(value)}` });
      return z.NEVER;
    })
    .optional();
}

/** An optional string: absent or null mean "not given". */
export function optionalString(max = 255) {
  return z
    .string()
    .max(max)
    .nullish()
    .transform((value) => value ?? undefined);
}

/** Nova's action bodies carry null (`{"reserve": null}`). */
export const nullValue = z.null();

/**
 * Nova's action bodies (`POST .../action`): an object with exactly one key, the
 * action's name. Returns the name; its value is checked by the caller's schema.
 */
export function actionName<N extends string>(body: unknown, names: readonly N[], resource: string): N {
  const known = `${resource} actions are ${names.join(', ')}`;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new Invalid(`the request body must be an object naming one action, got ${jsonKind(body)}; ${known}`);
  }
  const keys = Object.keys(body);
  if (keys.length !== 1) throw new Invalid(`the request body must name exactly one action, got ${keys.length} keys; ${known}`);
  const name = names.find((candidate) => candidate === keys[0]);
  if (name === undefined) throw new Invalid(`There is no such action: ${JSON.stringify(keys[0]!.slice(0, 40))}; ${known}`);
  return name;
}
