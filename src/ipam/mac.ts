import { randomBytes } from 'node:crypto';
import { formatAddress } from './address.js';
import type { Cidr } from './cidr.js';

/** OpenStack's locally administered prefix, so operators recognise instance MACs. */
export const MAC_PREFIX = 'fa:16:3e';

export type RandomBytes = (count: number) => Uint8Array;

/** A random instance MAC `fa:16:3e:xx:xx:xx`; uniqueness is enforced by the database. */
export function randomMac(random: RandomBytes = randomBytes): string {
  const tail = Array.from(random(3), (byte) => byte.toString(16).padStart(2, '0'));
  return [MAC_PREFIX, ...tail].join(':');
}

const MAC_PATTERN = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

export function isMac(text: string): boolean {
  return MAC_PATTERN.test(text);
}

/**
 * The SLAAC address (RFC 4862, modified EUI-64) of `mac` in a /64: what a VM
 * configures itself from router advertisements, as nova's rfc2462 backend computed it.
 */
export function eui64Address(prefix: Cidr, mac: string): string {
  const bytes = mac.split(':').map((part) => parseInt(part, 16));
  const [b0 = 0, b1 = 0, b2 = 0, b3 = 0, b4 = 0, b5 = 0] = bytes;
  const iid = [b0 ^ 0x02, b1, b2, 0xff, 0xfe, b3, b4, b5];
  let value = 0n;
  for (const byte of iid) value = (value << 8n) | BigInt(byte);
  return formatAddress({ version: 6, value: prefix.network | value });
}
