import type { NewRule, Protocol, SecurityGroupRule } from '../db/securityGroups.js';
import { Invalid } from '../errors.js';
import { labelField, quote } from '../fields.js';
import { formatAddress } from '../ipam/address.js';
import { parseCidr } from '../ipam/cidr.js';

/**
 * A security group rule as a caller asks for it, checked and completed by nova's rules:
 * a CIDR source (default 0.0.0.0/0) needs a protocol and ports; a group source without
 * them opens every protocol, and a group source with a protocol but no ports opens all
 * of its ports. Pure: the groups named are looked up by the caller.
 */
export interface RuleRequest {
  ipProtocol?: string | null;
  fromPort?: number | string | null;
  toPort?: number | string | null;
  cidr?: string | null;
  /** A group source: its id (a string of one, as Nova took it), checked by the caller. */
  groupId?: number | string | null;
}

const PROTOCOLS: readonly Protocol[] = ['tcp', 'udp', 'icmp'];

/** A port or ICMP type/code as Nova took it: an integer, or a string of one. */
function portNumber(value: number | string, protocol: Protocol): number {
  const parsed = typeof value === 'number' ? value : /^\s*-?\d+\s*$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(parsed)) {
    throw new Invalid(protocol === 'icmp' ? 'Type and Code must be integers for ICMP protocol type' : 'To and From ports must be integers');
  }
  return parsed;
}

/** The source CIDR, canonical (its host bits must be zero); none given means 0.0.0.0/0. */
export function ruleCidr(cidr: string | null | undefined): string {
  if (cidr === undefined || cidr === null) return '0.0.0.0/0';
  let parsed: ReturnType<typeof parseCidr>;
  try {
    parsed = parseCidr(cidr, 'cidr');
  } catch {
    throw new Invalid(`Invalid CIDR ${quote(cidr)}`);
  }
  return `${formatAddress({ version: parsed.version, value: parsed.network })}/${parsed.prefix}`;
}

/** The protocol and port range of a rule, checked; undefined when no protocol or no ports were given. */
export function rulePorts(request: RuleRequest): Pick<NewRule, 'protocol' | 'fromPort' | 'toPort'> | undefined {
  const given = (value: unknown) => value !== undefined && value !== null && value !== '';
  if (!given(request.ipProtocol)) return undefined;
  const protocol = String(request.ipProtocol).toLowerCase() as Protocol;
  if (!PROTOCOLS.includes(protocol)) throw new Invalid(`Invalid IP protocol ${quote(String(request.ipProtocol))}.`);
  let from = given(request.fromPort) ? portNumber(request.fromPort!, protocol) : undefined;
  let to = given(request.toPort) ? portNumber(request.toPort!, protocol) : undefined;
  if (from === undefined && to === undefined && request.groupId !== undefined && request.groupId !== null) {
    // A group source with a protocol alone: all of it.
    [from, to] = protocol === 'icmp' ? [-1, -1] : [1, 65535];
  }
  if (from === undefined || to === undefined) return undefined;
  const range = `Invalid port range ${from}:${to}.`;
  if (protocol === 'icmp') {
    if (from < -1 || from > 255 || to < -1 || to > 255) throw new Invalid(`${range} For ICMP, the type:code must be valid`);
  } else {
    if (from > to) throw new Invalid(`${range} Former value cannot be greater than the later`);
    if (from < 1 || to > 65535) throw new Invalid(`${range} Valid ${protocol.toUpperCase()} ports should be between 1-65535`);
  }
  return { protocol, fromPort: from, toPort: to };
}

/** The rule to store for group `parentGroupId`, or nova's 400 when there is not enough of it. */
export function buildRule(parentGroupId: number, request: RuleRequest): NewRule {
  const ports = rulePorts(request);
  const groupId = request.groupId === undefined || request.groupId === null ? null : Number(request.groupId);
  if (groupId !== null) {
    // A group source: the CIDR OSC sends alongside (0.0.0.0/0) does not count.
    return { parentGroupId, groupId, cidr: null, ...(ports ?? { protocol: null, fromPort: null, toPort: null }) };
  }
  const cidr = ruleCidr(request.cidr);
  if (!ports) throw new Invalid('Not enough parameters to build a valid rule.');
  return { parentGroupId, groupId: null, cidr, ...ports };
}

/** Whether `rule` is already in `rules` (nova compares protocol, ports and source). */
export function isDuplicateRule(rule: NewRule, rules: SecurityGroupRule[]): boolean {
  return rules.some(
    (other) =>
      other.parentGroupId === rule.parentGroupId &&
      other.protocol === rule.protocol &&
      other.fromPort === rule.fromPort &&
      other.toPort === rule.toPort &&
      other.cidr === rule.cidr &&
      other.groupId === rule.groupId,
  );
}

/**
 * A group's name or description: a string of 1 to 255 characters once stripped (Nova's
 * check), kept as given (as Nova), printable on one line (it reaches tables and logs).
 */
export function groupText(value: unknown, what: 'name' | 'description'): string {
  if (typeof value !== 'string') throw new Invalid(`Security group ${what} is not a string or unicode`);
  const stripped = value.trim();
  if (stripped === '') throw new Invalid(`Security group ${what} cannot be empty.`);
  if (stripped.length > 255) throw new Invalid(`Security group ${what} should not be greater than 255 characters.`);
  return labelField(value, `Security group ${what}`);
}

/** A database id as text or number, if it is one (1 to 2^31-1 digits only); else undefined. */
export function idValue(value: unknown): number | undefined {
  const text = typeof value === 'number' ? String(value) : typeof value === 'string' ? value : '';
  return /^\d{1,10}$/.test(text) && Number(text) <= 2 ** 31 - 1 ? Number(text) : undefined;
}

/** Nova's ids are integers: anything else is refused before a lookup (OSC then searches by name). */
export function groupId(value: unknown, what = 'Security group id'): number {
  const id = idValue(value);
  if (id === undefined) throw new Invalid(`${what} should be integer`);
  return id;
}
