/**
 * The generated bad-input corpus against every novanet-manage verb and
 * novanet-dhcpbridge (issue 16). For each row of test/support/cliVerbs.ts, fast-check
 * makes command lines that are bad by construction (test/support/badArbitraries.ts):
 * one option's or positional's value broken, an option no verb has, an action no
 * category has. Each must be refused with the whole contract of expectRefusedLine: a
 * non-zero exit with one `error:` line, nothing else written, no internals, the
 * database and state_path as they were. In-process, on SQLite and on MariaDB.
 *
 * The seed is fixed, so a failure reproduces; NOVANET_FUZZ_SEED picks another and
 * NOVANET_FUZZ_RUNS sets the cases per verb (README, "Testing").
 */
import fc from 'fast-check';
import { describe, it } from 'vitest';
import { alienSegment, badInteger, badValue, fuzzSettings, runsOn } from '../support/badArbitraries.js';
import { argvOf, expectRefusedLine, fixture, VERBS, type VerbCase, type World } from '../support/cliVerbs.js';
import { BACKENDS } from '../support/databases.js';
import { useFixture } from '../support/useFixture.js';

const settings = fuzzSettings();

/** Every way this generator breaks a valid command line of `row`. */
function badLines(row: VerbCase, w: World): fc.Arbitrary<string[]> {
  const valid = row.args(w);
  const ways: fc.Arbitrary<string[]>[] = Object.entries(row.fields).map(([field, spec]) => {
    const value = typeof spec === 'string' ? badValue(spec, valid[field], 'text') : badInteger(spec.min, spec.max, 'text');
    return value.map((bad) => argvOf(row.verb, { ...valid, [field]: String(bad) }));
  });
  // No verb has an option of this name, nor a category an action of this one.
  const unknown = fc.string({ minLength: 1, maxLength: 12, unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz_') });
  // dnsmasq's script takes a hostname as its last word (untrusted, ignored), so the extra word comes after one.
  const full = row.verb.startsWith('dhcpbridge') ? { $2: 'vm1', ...valid } : valid;
  ways.push(unknown.map((name) => [...argvOf(row.verb, full), `--x-unknown-${name}=1`]));
  if (!row.verb.startsWith('dhcpbridge')) {
    ways.push(alienSegment.map((action) => [row.verb.split(' ')[0]!, action, ...argvOf(row.verb, valid).slice(2)]));
  }
  return fc.oneof(...ways);
}

describe.each(BACKENDS)('generated bad command lines on %s', (backend) => {
  const current = useFixture(() => fixture(backend));
  const runs = runsOn(backend, settings.runs);

  it.each(VERBS.map((row, index) => ({ row, index, title: `${row.verb} (${row.what})` })))(
    `$title: ${runs} generated bad command lines, each refused`,
    async ({ row, index }) => {
      const f = current();
      await fc.assert(
        fc.asyncProperty(badLines(row, f.w), async (argv) => {
          await expectRefusedLine(f, row.verb, argv);
        }),
        { seed: settings.seed + index, numRuns: runs },
      );
    },
    Math.max(60_000, runs * 500),
  );
});
