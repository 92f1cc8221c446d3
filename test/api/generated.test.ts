/**
 * The generated bad-input corpus against every API route (issue 16). For each row of
 * test/support/apiRoutes.ts, fast-check makes requests that are bad by construction
 * (test/support/badArbitraries.ts): one field's value broken, the body replaced,
 * grown an unknown key, cut short, not UTF-8, too large or of another Content-Type,
 * a wrong or missing token, a method the path does not take, a path with a foreign
 * segment. Each must be refused with the whole contract of expectRefused: a 4xx in
 * Nova's fault shape, no internals, nothing asked of the host, no command run, the
 * database and state_path as they were. On SQLite and on MariaDB.
 *
 * The seed is fixed, so a failure reproduces; NOVANET_FUZZ_SEED picks another and
 * NOVANET_FUZZ_RUNS sets the cases per route (README, "Testing").
 */
import fc from 'fast-check';
import { describe, it } from 'vitest';
import { DEFAULT_MAX_BODY_BYTES } from '../../src/api/body.js';
import {
  baseRequest,
  expectRefused,
  fixture,
  type Request,
  ROUTES,
  type RouteCase,
  substituted,
  validValue,
  type World,
} from '../support/apiRoutes.js';
import { alien, alienSegment, badContentType, badInteger, badToken, badValue, fuzzSettings, runsOn } from '../support/badArbitraries.js';
import { BACKENDS } from '../support/databases.js';
import { useFixture } from '../support/useFixture.js';

const settings = fuzzSettings();

/** Routes that need no token (the open router's). */
const OPEN = new Set(['GET /healthz', 'GET /metrics']);
const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'];

/** A route's path with its parameters blanked, so `/:host` and `/:action` compare equal: they match the same URLs. */
const shapeOf = (route: string) => route.split(' ')[1]!.replace(/:\w+/g, ':');

/** Methods no route of this path's shape takes (GET brings HEAD, so HEAD is never wrong). */
function wrongMethods(row: RouteCase): string[] {
  const taken = new Set(ROUTES.filter((other) => shapeOf(other.route) === shapeOf(row.route)).map((other) => other.route.split(' ')[0]));
  return METHODS.filter((method) => !taken.has(method));
}

/** Object levels of a body, as dotted paths ('' is the top). */
function objectPaths(value: unknown, path = ''): string[] {
  if (typeof value !== 'object' || value === null) return [];
  const own = Array.isArray(value) ? [] : [path];
  return own.concat(Object.entries(value).flatMap(([key, child]) => objectPaths(child, path === '' ? key : `${path}.${key}`)));
}

/** The body with an unknown key added at one of its object levels. */
function withExtraKey(body: unknown): fc.Arbitrary<unknown> {
  const paths = objectPaths(body);
  return fc
    .tuple(fc.constantFrom(...paths), fc.string({ minLength: 1, maxLength: 12 }), fc.jsonValue({ maxDepth: 1 }))
    .filter(([path, key]) => {
      const node = path === '' ? body : validAt(body, path);
      return !Object.hasOwn(node as object, key);
    })
    .map(([path, key, value]) => {
      const copy = structuredClone(body) as Record<string, unknown>;
      const node = (path === '' ? copy : validAt(copy, path)) as Record<string, unknown>;
      // An own property even when the key is `__proto__`, which plain assignment would take as the prototype.
      Object.defineProperty(node, key, { value, enumerable: true, writable: true, configurable: true });
      return copy;
    });
}

function validAt(body: unknown, path: string): unknown {
  let node = body;
  for (const key of path.split('.')) node = (node as Record<string, unknown>)[key];
  return node;
}

/** Bytes that are not one JSON text: the body cut short, followed by a foreign character, or holding a byte UTF-8 never has. */
function brokenBytes(body: unknown): fc.Arbitrary<Buffer> {
  const text = JSON.stringify(body);
  return fc.oneof(
    fc.integer({ min: 1, max: text.length - 1 }).map((length) => Buffer.from(text.slice(0, length))),
    alien.filter((odd) => odd.trim() !== '').map((odd) => Buffer.from(`${text}${odd}`)),
    fc.tuple(fc.nat({ max: text.length }), fc.constantFrom(0xff, 0xfe, 0xc0, 0xc1, 0xf8)).map(([at, byte]) => {
      const bytes = Buffer.from(text);
      return Buffer.concat([bytes.subarray(0, at), Buffer.from([byte]), bytes.subarray(at)]);
    }),
  );
}

/** No body: what routes taking `null` or `{}` accept, so never a bad replacement. */
const emptyish = (value: unknown) =>
  value === null || (typeof value === 'object' && !Array.isArray(value) && Object.keys(value as object).length === 0);

/** Every way this generator breaks a valid request of `row`. */
function badRequests(row: RouteCase, w: World, token: string): fc.Arbitrary<Request> {
  const base = baseRequest(row, w);
  const json = { 'Content-Type': 'application/json' };
  const ways: fc.Arbitrary<Request>[] = Object.entries(row.fields).map(([field, spec]) => {
    const carrier = field.includes(':') ? 'text' : 'json';
    const value = typeof spec === 'string' ? badValue(spec, validValue(row, w, field), carrier) : badInteger(spec.min, spec.max, carrier);
    return value.map((bad) => substituted(row, w, field, bad));
  });
  if (base.body !== undefined) {
    const { body, ...bare } = base;
    ways.push(
      fc
        .jsonValue({ maxDepth: 3 })
        .filter((other) => !emptyish(other))
        .map((other) => ({ ...bare, body: other })),
      withExtraKey(body).map((grown) => ({ ...bare, body: grown })),
      brokenBytes(body).map((raw) => ({ ...bare, raw, headers: json })),
      badContentType.map((type) => ({ ...bare, raw: JSON.stringify(body), headers: { 'Content-Type': type } })),
      fc
        .integer({ min: 1, max: 4096 })
        .map((over) => ({ ...bare, raw: `{"pad": "${'a'.repeat(DEFAULT_MAX_BODY_BYTES + over)}"}`, headers: json })),
    );
  }
  if (!OPEN.has(row.route)) ways.push(fc.oneof(badToken(token), fc.constant(null)).map((other) => ({ ...base, token: other })));
  const methods = wrongMethods(row);
  // A GET carries no body (HTTP clients refuse to send one).
  const { body: _dropped, ...bodiless } = base;
  if (methods.length > 0)
    ways.push(fc.constantFrom(...methods).map((method) => (method === 'GET' ? { ...bodiless, method } : { ...base, method })));
  const segments = base.path.split('/');
  ways.push(
    fc.tuple(fc.integer({ min: 1, max: segments.length }), alienSegment).map(([at, segment]) => {
      const path = [...segments.slice(0, at), encodeURIComponent(segment), ...segments.slice(at)].join('/');
      return { ...base, path };
    }),
  );
  return fc.oneof(...ways);
}

describe.each(BACKENDS)('generated bad requests on %s', (backend) => {
  const current = useFixture(() => fixture(backend));
  const runs = runsOn(backend, settings.runs);

  it.each(ROUTES.map((row, index) => ({ row, index, title: `${row.route} (${row.what})` })))(
    `$title: ${runs} generated bad requests, each refused`,
    async ({ row, index }) => {
      const f = current();
      await fc.assert(
        fc.asyncProperty(badRequests(row, f.w, f.token), async (request) => {
          await expectRefused(f, request);
        }),
        { seed: settings.seed + index, numRuns: runs },
      );
    },
    Math.max(60_000, runs * 300),
  );
});
