/**
 * The generated bad-input corpus (issue 16): fast-check arbitraries of values each
 * kind of field must refuse. Every value is bad by construction (a valid value broken
 * in a way its grammar forbids, a type the field never takes, a size past its
 * limit), never by asking novanet's own checks which values are bad.
 */
import fc from 'fast-check';
import type { Kind } from './badInputs.js';

/** Control characters (C0, DEL, C1), line and paragraph separators, direction overrides: no field takes one, free text included. */
export const unprintable: fc.Arbitrary<string> = fc
  .oneof(
    fc.integer({ min: 0, max: 0x1f }),
    fc.constant(0x7f),
    fc.integer({ min: 0x80, max: 0x9f }),
    fc.constantFrom(0x2028, 0x2029, 0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068, 0x2069),
  )
  .map((code) => String.fromCodePoint(code));

/**
 * Characters outside the alphabet of every structured kind (names, ids, addresses,
 * ranges, which use only ASCII letters, digits and `._@:/-`): shell and SQL
 * metacharacters, and non-ASCII look-alikes. Blanks are apart: integers and booleans
 * are read with blanks around them, as oslo.config reads them.
 */
const FOREIGN = [...';$|&<>\'"`(){}[]*?!#^=~,\\+%', '\u200b', 'é', 'İ', '１', '٣', '🔥'];
/** Blanks as String.trim() knows them, non-breaking and ideographic spaces included. */
const BLANKS = [' ', '\t', '\n', '\u00a0', '\u3000', '\ufeff'];
const foreign = fc.constantFrom(...FOREIGN);
/** A character no structured kind has anywhere. */
export const alien: fc.Arbitrary<string> = fc.oneof(foreign, fc.constantFrom(...BLANKS), unprintable);

/** `text` with `piece` put in at any place, both ends included. */
function inserted(text: string, piece: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc.tuple(fc.nat({ max: text.length }), piece).map(([at, part]) => `${text.slice(0, at)}${part}${text.slice(at)}`);
}

/** `text` with `piece` put strictly inside it (blanks at the ends of a number are fine). */
function insertedInside(text: string, piece: fc.Arbitrary<string>): fc.Arbitrary<string> {
  if (text.length < 2) return piece.map((part) => `${text}${part}0`);
  return fc.tuple(fc.integer({ min: 1, max: text.length - 1 }), piece).map(([at, part]) => `${text.slice(0, at)}${part}${text.slice(at)}`);
}

/** Longer than any name, id or label may be (255): 'a's appended. */
const tooLong = (text: string, max = 3000) => fc.integer({ min: 256, max }).map((extra) => `${text}${'a'.repeat(extra)}`);

/** JSON values of a type no string field takes (null is "not given" in Nova's bodies, so it is not here). */
const notAString: fc.Arbitrary<unknown> = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 }),
);

/** Lists nested deeper than a body may nest (32). */
export const deeplyNested: fc.Arbitrary<unknown> = fc.integer({ min: 33, max: 2000 }).map((depth) => {
  let value: unknown = 'x';
  for (let level = 0; level < depth; level++) value = [value];
  return value;
});

const octet = fc.integer({ min: 0, max: 255 });
const tooBigOctet = fc.integer({ min: 256, max: 99999 });

/** Four-part addresses with one part out of range, or with three or five parts. */
const brokenIpv4: fc.Arbitrary<string> = fc.oneof(
  fc.tuple(fc.array(octet, { minLength: 3, maxLength: 3 }), tooBigOctet, fc.nat({ max: 3 })).map(([parts, big, at]) => {
    parts.splice(at, 0, big);
    return parts.join('.');
  }),
  fc.array(octet, { minLength: 3, maxLength: 3 }).map((parts) => parts.join('.')),
  fc.array(octet, { minLength: 5, maxLength: 5 }).map((parts) => parts.join('.')),
  fc
    .tuple(fc.array(octet, { minLength: 3, maxLength: 3 }), fc.integer({ min: 0, max: 99 }))
    .map(([parts, low]) => `${parts.join('.')}.0${low}`),
);

/** Ranges no host may route or own (loopback, 0/8, multicast, link-local, broadcast), in range syntax. */
const specialRange: fc.Arbitrary<string> = fc.oneof(
  fc.tuple(fc.constantFrom(127, 0), octet, octet).map(([first, b, c]) => `${first}.${b}.${c}.0/24`),
  fc.tuple(fc.integer({ min: 224, max: 239 }), octet, octet).map(([first, b, c]) => `${first}.${b}.${c}.0/24`),
  fc.tuple(octet, fc.integer({ min: 0, max: 63 })).map(([c, d]) => `169.254.${c}.${d * 4}/30`),
  fc.constantFrom('255.255.255.255', '0.0.0.0/0', '0.0.0.0', '127.0.0.1', '169.254.169.254', '224.0.0.1'),
);

/** A network address with a prefix past 32, or with host bits set. */
const brokenCidr4: fc.Arbitrary<string> = fc.oneof(
  fc.tuple(octet, octet, fc.integer({ min: 33, max: 999 })).map(([a, b, prefix]) => `10.${a}.${b}.0/${prefix}`),
  fc.tuple(octet, fc.integer({ min: 1, max: 255 }), fc.integer({ min: 8, max: 24 })).map(([a, d, prefix]) => `10.${a}.0.${d}/${prefix}`),
  brokenIpv4.map((address) => `${address}/24`),
);

const hexDigit = fc.constantFrom(...'0123456789abcdef');
const hexGroup = fc.integer({ min: 0, max: 0xffff }).map((value) => value.toString(16));

/** Nine groups, a group of five digits, or two `::`. */
const brokenIpv6: fc.Arbitrary<string> = fc.oneof(
  fc.array(hexGroup, { minLength: 9, maxLength: 9 }).map((groups) => groups.join(':')),
  fc.tuple(hexGroup, fc.integer({ min: 0x10000, max: 0xfffff })).map(([group, big]) => `2001:db8:${group}::${big.toString(16)}`),
  fc.tuple(hexGroup, hexGroup).map(([a, b]) => `2001::${a}::${b}`),
);

/** A UUID one digit short or long, or with a digit that is not hex. */
const brokenUuid = (valid: string): fc.Arbitrary<string> =>
  fc.oneof(
    fc.nat({ max: valid.length - 1 }).map((at) => `${valid.slice(0, at)}${valid.slice(at + 1)}`),
    fc.tuple(fc.nat({ max: valid.length }), hexDigit).map(([at, digit]) => `${valid.slice(0, at)}${digit}${valid.slice(at)}`),
    fc
      .tuple(fc.nat({ max: valid.length - 1 }), fc.constantFrom(...'ghijklmnopqrstuvwxyz'))
      .filter(([at]) => valid[at] !== '-')
      .map(([at, letter]) => `${valid.slice(0, at)}${letter}${valid.slice(at + 1)}`),
  );

/** Host names: a label past 63, or one that starts or ends with '-', or holds '_'. */
const brokenHost: fc.Arbitrary<string> = fc.oneof(
  fc.integer({ min: 64, max: 200 }).map((length) => `${'h'.repeat(length)}.example.org`),
  fc.constantFrom('-host', 'host-', 'bad_host', 'a..b', '.host', 'host.'),
);

/** Interface names past the kernel's 15 characters. */
const longIfname = fc.integer({ min: 16, max: 64 }).map((length) => `br${'0'.repeat(length - 2)}`);

/** What `kind`'s grammar adds to the general breaks. */
function brokenOfKind(kind: Kind, valid: string): fc.Arbitrary<string>[] {
  switch (kind) {
    case 'ipv4':
      return [brokenIpv4];
    case 'cidr4':
      return [brokenCidr4, specialRange.filter((range) => range.includes('/')), brokenIpv4];
    case 'cidr':
      return [brokenCidr4, brokenIpv4];
    case 'range4':
      return [brokenCidr4, specialRange];
    case 'ipv6':
      return [brokenIpv6];
    case 'cidr6':
      return [brokenIpv6.map((address) => `${address}/64`), fc.integer({ min: 129, max: 999 }).map((prefix) => `2001:db8::/${prefix}`)];
    case 'uuid':
      return [brokenUuid(valid)];
    case 'host':
      return [brokenHost];
    case 'ifname':
      return [longIfname];
    case 'mac':
      return [fc.array(hexDigit, { minLength: 1, maxLength: 5 }).map((digits) => digits.map((digit) => `${digit}0`).join(':'))];
    default:
      return [];
  }
}

/** A valid value of each kind, to break when the valid request leaves the field out. */
const EXAMPLES: Record<Kind, string> = {
  text: 'label',
  ifname: 'eth3',
  project: 'p1',
  host: 'compute1',
  uuid: '00000000-0000-4000-8000-000000000009',
  ipv4: '10.9.0.5',
  ipv6: '2001:db8::5',
  cidr4: '10.9.0.0/28',
  cidr6: '2001:db8::/64',
  cidr: '10.9.0.0/28',
  range4: '192.0.2.64/29',
  mac: 'fa:16:3e:00:00:09',
  bool: 'true',
  null: 'null',
};

/** Where a value goes: a JSON body takes any JSON value; a URL segment or a command line takes text only. */
export type Carrier = 'json' | 'text';

/**
 * Values a field of `kind` must refuse, made from its valid value `valid`. Text
 * carriers get strings only, none empty (an empty URL segment is another route, an
 * empty option another mistake, both tested apart).
 */
export function badValue(kind: Kind, valid: unknown, carrier: Carrier): fc.Arbitrary<unknown> {
  const text = valid === undefined ? EXAMPLES[kind] : typeof valid === 'string' ? valid : String(valid);
  // Booleans are read with blanks around them (oslo.config's way), and some unprintables are blanks to trim().
  const broken = kind === 'bool' ? insertedInside(text, unprintable) : inserted(text, unprintable);
  const strings: fc.Arbitrary<string>[] = [broken, tooLong(text)];
  if (kind === 'bool') {
    strings.push(insertedInside('true', fc.oneof(foreign, unprintable)), inserted('false', foreign));
  } else if (kind === 'null') {
    strings.push(fc.string({ minLength: 1, maxLength: 20 }));
  } else if (kind !== 'text') {
    strings.push(inserted(text, alien), ...brokenOfKind(kind, text));
  }
  if (carrier === 'text') return fc.oneof(...strings);
  const json: fc.Arbitrary<unknown>[] = [...strings, deeplyNested];
  if (kind === 'bool') json.push(fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true })), fc.array(fc.boolean()));
  else if (kind === 'null') json.push(fc.jsonValue({ maxDepth: 2 }).filter((value) => value !== null));
  else json.push(notAString, fc.constant(''));
  return fc.oneof(...json);
}

/** Integers outside `min`..`max`, fractions, numbers past 2^53, digits broken by a foreign character, and other types (JSON only). */
export function badInteger(min: number, max: number, carrier: Carrier): fc.Arbitrary<unknown> {
  const numbers: fc.Arbitrary<number>[] = [
    fc.double({ min: -1e6, max: 1e6, noNaN: true, noInteger: true }),
    fc.double({ min: 2 ** 53, max: 1e300, noNaN: true }),
  ];
  if (min > Number.MIN_SAFE_INTEGER) numbers.push(fc.integer({ min: Math.max(min - 1_000_000, Number.MIN_SAFE_INTEGER), max: min - 1 }));
  if (max < Number.MAX_SAFE_INTEGER)
    numbers.push(fc.integer({ min: max + 1, max: Math.min(max + 1_000_000_000, Number.MAX_SAFE_INTEGER) }));
  const asText = fc.oneof(...numbers).map((value) => String(value));
  const broken = fc
    .integer({ min, max: Math.min(max, min + 1_000_000) })
    .chain((value) => insertedInside(String(value), fc.oneof(foreign, unprintable, fc.constantFrom(...BLANKS))));
  const strings = [asText, broken];
  if (carrier === 'text') return fc.oneof(...strings);
  return fc.oneof(...numbers, ...strings, fc.boolean(), fc.array(fc.integer({ min, max }), { minLength: 1, maxLength: 2 }), deeplyNested);
}

/** A Content-Type that is not JSON in UTF-8: another type, a malformed header, another charset. */
export const badContentType: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    'text/plain',
    'application/xml',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
    'application/jsonx',
    'json',
    'application/',
    '/json',
  ),
  fc.constantFrom(';', ';;;', '; charset', ';=', ', text/html', ' json').map((tail) => `application/json${tail}`),
  fc.constantFrom('latin1', 'utf-16', 'us-ascii', 'iso-8859-1').map((charset) => `application/json; charset=${charset}`),
  // Printable ASCII that is no spelling of a JSON type (headers carry nothing else).
  fc
    .string({ minLength: 1, maxLength: 40 })
    .filter((header) => header.trim() !== '' && !/^\s*application\/(?:[!#$%&'*+.^_`|~0-9a-z-]*\+)?json\s*(?:;|$)/i.test(header)),
);

/** A token that is not one: the right one with a character put in, one cut short, a random one. */
export function badToken(valid: string): fc.Arbitrary<string> {
  return fc.oneof(
    inserted(valid, fc.constantFrom(...'0123456789abcdefXYZ_-')),
    fc.integer({ min: 1, max: valid.length - 1 }).map((length) => valid.slice(0, length)),
    fc.string({ minLength: 1, maxLength: 80, unit: fc.constantFrom(...'0123456789abcdef') }).filter((token) => token !== valid),
  );
}

/** A path segment no route has: it holds a character no name or id holds. */
export const alienSegment: fc.Arbitrary<string> = fc
  .tuple(fc.string({ maxLength: 8, unit: fc.constantFrom(...'abcxyz0123456789') }), alien, fc.string({ maxLength: 8 }))
  .map(([head, odd, tail]) => `${head}${odd}${tail}`);

/** Settings of the generated corpus: a fixed seed so a failure reproduces, and a knob for many more cases locally. */
export interface FuzzSettings {
  seed: number;
  /** Cases per route or verb on SQLite; MariaDB runs an eighth as many. */
  runs: number;
}

export function fuzzSettings(env: NodeJS.ProcessEnv = process.env, defaults: FuzzSettings = { seed: 20261207, runs: 100 }): FuzzSettings {
  const read = (name: string, fallback: number, min: number) => {
    const text = env[name];
    if (text === undefined || text === '') return fallback;
    if (!/^\d{1,9}$/.test(text) || Number(text) < min)
      throw new Error(`${name} must be an integer of at least ${min}, got ${JSON.stringify(text)}`);
    return Number(text);
  };
  return { seed: read('NOVANET_FUZZ_SEED', defaults.seed, 0), runs: read('NOVANET_FUZZ_RUNS', defaults.runs, 1) };
}

/** Cases a backend runs: all on SQLite; on MariaDB (a server round trip per statement) an eighth, at least 8. */
export function runsOn(backend: string, runs: number): number {
  return backend === 'sqlite' ? runs : Math.max(8, Math.ceil(runs / 8));
}
