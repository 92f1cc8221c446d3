/**
 * The bad-input corpus against every novanet-manage verb and novanet-dhcpbridge
 * (issue 7): each option and positional of each verb gets every bad value of its kind
 * (test/support/badInputs.ts). Each run exits non-zero with exactly one `error: ...`
 * line on stderr, no stack trace, nothing on stdout, and leaves every row of the
 * database as it was. The bulk runs in-process (the programs' own `manage` and
 * `dhcpbridge` functions, with their real config loading and database connection); a
 * handful go through the built binaries to prove the same of the real process.
 *
 * No command can run: the CLI's host layer writes the database only (src/cli/run.ts),
 * and the config points root_helper at a path that does not exist, so a privileged
 * command, were one ever started, would fail instead of touching this machine.
 */
import { describe, expect, it } from 'vitest';
import { CATEGORIES } from '../../src/cli/manage/index.js';
import { asArgs, badIntegers, badValues } from '../support/badInputs.js';
import { expectError, run } from '../support/cli.js';
import { argvOf, expectRefusedLine, fixture, inProcess, VERBS, type VerbCase } from '../support/cliVerbs.js';
import { snapshot } from '../support/dbState.js';
import { useFixture, withFixture } from '../support/useFixture.js';

function casesOf(row: VerbCase): { title: string; row: VerbCase; field: string; value: string }[] {
  return Object.entries(row.fields).flatMap(([field, spec]) => {
    const values = asArgs(typeof spec === 'string' ? badValues(spec) : badIntegers(spec.min, spec.max))
      // `--x=` is "needs a value" (another case); an empty positional is still a value.
      .filter((entry) => !(entry.value === '' && !field.startsWith('$')));
    return values.map((entry) => ({ title: `${row.verb} (${row.what}): ${field} = ${entry.name}`, row, field, value: entry.value }));
  });
}

const CASES = VERBS.flatMap(casesOf);

describe('bad input to every CLI verb (in-process)', () => {
  const current = useFixture(() => fixture());

  it('has a row for every novanet-manage verb', () => {
    const verbs = Object.entries(CATEGORIES).flatMap(([category, actions]) =>
      Object.keys(actions).map((action) => `${category} ${action}`),
    );
    expect(verbs.filter((verb) => !VERBS.some((row) => row.verb === verb))).toEqual([]);
  });

  it.each(CASES)('$title', async ({ row, field, value }) => {
    const f = current();
    await expectRefusedLine(f, row.verb, argvOf(row.verb, { ...row.args(f.w), [field]: value }));
  });
});

/** Each row's command line as it stands succeeds (in a world of its own): the refusals are the bad value's doing. */
describe('the valid command line of every row', () => {
  it.each(VERBS.map((row) => ({ title: `${row.verb} (${row.what})`, row })))('$title succeeds', ({ row }) =>
    withFixture(
      () => fixture(),
      async (f) => {
        const result = await inProcess(f.config, row.verb, argvOf(row.verb, row.args(f.w)));
        expect({ status: result.status, stderr: result.stderr }).toEqual({ status: 0, stderr: '' });
      },
    ),
  );
});

/**
 * A sample through the built programs (`npm run build`): the process exits non-zero
 * with one line on stderr and no stack trace, as in-process. NUL cannot be passed in
 * an argv and 1 MB passes the kernel's limit for one argument, so those stay in-process.
 */
const SAMPLES = [
  'network create (options): label = newline',
  'network create (options): bridge = semicolon',
  'network create (options): vlan = above the maximum (4095)',
  'network create (options): fixed_range_v4 = host bits set',
  'network delete (by uuid): uuid = uuid with SQL',
  'fixed list (of a host): host = newline',
  'fixed reserve (an address): address = shell $(reboot)',
  'floating create (a range): ip_range = IPv4-mapped IPv6',
  'floating create (a range): interface = 16 characters (over IFNAMSIZ)',
  'project scrub (a project): project = SQL drop table',
  'token create (a token): project_id = shell backticks',
  'dhcpbridge add (a lease): $0 = MAC and a command',
];
const BINARY_CASES = CASES.filter((entry) => SAMPLES.includes(entry.title));

describe('bad input through the built binaries', () => {
  const current = useFixture(() => fixture());

  it('finds every sample among the cases', () => {
    expect(BINARY_CASES.map((entry) => entry.title).sort()).toEqual([...SAMPLES].sort());
  });

  it.concurrent.each(BINARY_CASES)('$title', async ({ row, field, value }) => {
    const f = current();
    const before = await snapshot(f.cli.db);
    const program = row.verb.startsWith('dhcpbridge') ? 'dhcpbridge' : 'manage';
    const result = await run(program, ['--config-file', f.config, ...argvOf(row.verb, { ...row.args(f.w), [field]: value })], {
      env: { NETWORK_ID: '1' },
    });
    expectError(result, /./, result.status ?? -1);
    expect(result.status).not.toBe(0);
    expect(await snapshot(f.cli.db)).toEqual(before);
  });
});
