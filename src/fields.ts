import { Invalid } from './errors.js';

/**
 * The checks every edge applies to the same kinds of value: the config loader, the
 * CLI's options, the API's schemas, the managers, and linux_net before a name reaches
 * a command line. Each message names the field and the rule. Nothing here depends on
 * anything but the error types, so every layer may use it.
 */

/** User text in an error message, shortened so a hostile input cannot flood a log line. */
export function quote(text: string): string {
  const shown = text.length > 64 ? `${text.slice(0, 61)}...` : text;
  return JSON.stringify(shown);
}

/** Interface and bridge names reach `ip` command lines: the kernel's rules, 15 characters at most. */
export function interfaceName(value: string, field: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/.test(value)) {
    throw new Invalid(`${field} must be an interface name of 1-15 letters, digits, '_', '.' or '-', got ${quote(value)}`);
  }
  return value;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether `value` is a UUID: the API answers a malformed id as one that does not exist. */
export function isUuid(value: string): boolean {
  return UUID.test(value);
}

/** A UUID in lower case, as stored. */
export function uuidField(value: string, field: string): string {
  if (!UUID.test(value)) throw new Invalid(`${field} must be a UUID, got ${quote(value)}`);
  return value.toLowerCase();
}

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

/** Project ids come from Keystone (hex) or operators; kept to a safe alphabet. */
export function projectIdField(value: string, field = 'project_id'): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.@-]{0,254}$/.test(value)) {
    throw new Invalid(`${field} must be 1-255 letters, digits, '_', '.', '@' or '-', got ${quote(value)}`);
  }
  return value;
}

const DNS_NAME = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** Host and instance hostnames end up in dnsmasq's hosts file: DNS labels only. */
export function hostnameField(value: string, field = 'hostname'): string {
  if (value.length > 253 || !DNS_NAME.test(value)) {
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

/** An integer written as text (an optional minus and up to 15 digits, blanks around allowed); undefined when it is not one. */
export function integerText(text: string): number | undefined {
  const trimmed = text.trim();
  return /^-?\d{1,15}$/.test(trimmed) ? Number(trimmed) : undefined;
}

const TRUE_WORDS = ['true', 't', 'yes', 'y', 'on', '1'];
const FALSE_WORDS = ['false', 'f', 'no', 'n', 'off', '0'];

/** oslo.config's spellings of true and false (any case, blanks around allowed); undefined for anything else. */
export function booleanText(text: string): boolean | undefined {
  const lowered = text.trim().toLowerCase();
  if (TRUE_WORDS.includes(lowered)) return true;
  if (FALSE_WORDS.includes(lowered)) return false;
  return undefined;
}
