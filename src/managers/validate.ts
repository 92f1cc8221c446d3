import { randomUUID } from 'node:crypto';
import { Invalid } from '../errors.js';
import { Address, formatAddress, parseAddress, quote } from '../ipam/address.js';

/** Edge validators shared by the managers; each message names the field and the rule. */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether `value` is a UUID: the API answers a malformed id as one that does not exist. */
export function isUuid(value: string): boolean {
  return UUID.test(value);
}

export function uuidField(value: string, field: string): string {
  if (!UUID.test(value)) throw new Invalid(`${field} must be a UUID, got ${quote(value)}`);
  return value.toLowerCase();
}

export const newUuid = (): string => randomUUID();

/**
 * Control characters (C0, DEL, C1), Unicode's line and paragraph separators, and the
 * bidirectional overrides and isolates: each can break a log line or a table row, or
 * make text show other than it is.
 */
const UNPRINTABLE = /[\p{Cc}\p{Zl}\p{Zp}\u202a-\u202e\u2066-\u2069]/u;

/** Labels reach logs, tables and dnsmasq tags: printable, no newlines, at most 255. */
export function labelField(value: string, field = 'label'): string {
  if (value.length === 0 || value.length > 255) throw new Invalid(`${field} must be 1 to 255 characters, got ${value.length}`);
  if (UNPRINTABLE.test(value)) throw new Invalid(`${field} must not contain control characters, newlines or direction overrides`);
  return value;
}

/** Project ids come from Keystone (hex) or operators; keep them to a safe alphabet. */
export function projectIdField(value: string, field = 'project_id'): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.@-]{0,254}$/.test(value)) {
    throw new Invalid(`${field} must be 1-255 letters, digits, '_', '.', '@' or '-', got ${quote(value)}`);
  }
  return value;
}

/** Host and instance hostnames end up in dnsmasq's hosts file: DNS labels only. */
export function hostnameField(value: string, field = 'hostname'): string {
  if (!/^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(value) || value.length > 253) {
    throw new Invalid(`${field} must be a DNS name (letters, digits, '-', dots between labels), got ${quote(value)}`);
  }
  return value;
}

export function integerField(value: number, field: string, min: number, max: number): number {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new Invalid(`${field} must be an integer from ${min} to ${max}, got ${quote(String(value))}`);
  }
  return value;
}

/** An address in canonical form, so lookups by text always match what was stored. */
export function addressField(value: string, field: string, version?: 4 | 6): string {
  return formatAddress(parseAddress(value, field, version));
}

export function parseAddressField(value: string, field: string, version?: 4 | 6): Address {
  return parseAddress(value, field, version);
}
