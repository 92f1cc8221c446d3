import { randomBytes } from 'node:crypto';

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
