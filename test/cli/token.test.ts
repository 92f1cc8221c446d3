/**
 * `novanet-manage token create|list|revoke`, run as the built program against a fresh
 * database of each backend: the token alone on stdout, hashed in the database, usable
 * by the API's TokenService; errors one line, exit 2, nothing written.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenService } from '../../src/auth/tokens.js';
import { type CliDatabase, cliDatabase, expectError, expectOk, parseTable, type RunResult, run } from '../support/cli.js';
import { BACKENDS } from '../support/databases.js';
import { snapshot } from '../support/dbState.js';

describe.each(BACKENDS)('novanet-manage token on %s', { concurrent: true }, (backend) => {
  let cli: CliDatabase;
  let conf: string;

  beforeAll(async () => {
    cli = await cliDatabase(backend, { sync: true });
    conf = cli.config('novanet.conf');
  });

  afterAll(async () => {
    await cli?.close();
  });

  const manage = (...args: string[]): Promise<RunResult> => run('manage', ['--config-file', conf, ...args]);
  const service = () => new TokenService({ db: cli.db });

  it.sequential('create prints the token alone; it is stored hashed and verifies with its project and role', async () => {
    const member = await manage('token', 'create', '--project_id=p1', '--description=compute hosts of rack 1');
    expectOk(member);
    expect(member.stdout).toMatch(/^[A-Za-z0-9_-]{43}\n$/);
    const token = member.stdout.trim();
    expect(await service().verify(token)).toMatchObject({ projectId: 'p1', role: 'member' });
    const rows = (await cli.db.knex('api_tokens').select('*')) as Record<string, unknown>[];
    expect(JSON.stringify(rows)).not.toContain(token);

    const admin = await manage('token', 'create', '--project-id', 'ops', '--role=admin');
    expectOk(admin);
    expect(await service().verify(admin.stdout.trim())).toMatchObject({ projectId: 'ops', role: 'admin' });
  });

  it.sequential('list shows id, project, role, description and creation time, never the tokens', async () => {
    const result = await manage('token', 'list');
    expectOk(result);
    const [header, ...rows] = parseTable(result.stdout);
    expect(header).toEqual(['id', 'project', 'role', 'description', 'created']);
    expect(rows.map((row) => row.slice(1, 4))).toEqual([
      ['p1', 'member', 'compute hosts of rack 1'],
      ['ops', 'admin', 'None'],
    ]);
    for (const row of rows) expect(row[4]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const only = parseTable((await manage('token', 'list', '--project_id=ops')).stdout);
    expect(only.slice(1).map((row) => row[1])).toEqual(['ops']);
  });

  it.sequential('revoke removes a token at once; list says when none is left', async () => {
    const [, ...rows] = parseTable((await manage('token', 'list')).stdout);
    const [first, second] = rows.map((row) => row[0]!);
    const revoked = await manage('token', 'revoke', `--id=${first}`);
    expectOk(revoked);
    expect(revoked.stdout).toBe(`revoked token ${first} (project p1, member)\n`);
    expectOk(await manage('token', 'revoke', second!));
    const empty = await manage('token', 'list');
    expectOk(empty);
    expect(empty.stdout).toBe('No token found.\n');
    expect(await service().list()).toEqual([]);
  });

  it.sequential('refuses mistakes with one line and exit 2, writing nothing', async () => {
    expectOk(await manage('token', 'create', '--project_id=p5'));
    const before = await snapshot(cli.db);
    const cases: [string[], string | RegExp][] = [
      [['token', 'create'], 'token create: give the project, as --project_id=PROJECT'],
      [['token', 'create', '--project_id=p1', '--role=root'], 'role must be admin or member, got "root"'],
      [['token', 'create', '--project_id=no spaces'], /^project_id must be 1-255 letters/],
      [['token', 'create', '--project_id=p1', 'extra'], 'token create: unexpected argument "extra"'],
      [['token', 'create', '--project=p1'], /^token create: unknown option --project; did you mean --project_id\?$/],
      [['token', 'revoke'], 'token revoke: give the token once, as --id=N'],
      [['token', 'revoke', '--id=abc'], 'token revoke: --id must be a whole number, got "abc"'],
      [['token', 'revoke', 'abc'], 'token revoke: the id must be a whole number, got "abc"'],
      [['token', 'revoke', '--id=1', '2'], 'token revoke: give the token once, as --id=N'],
      [['token', 'revoke', '--id=999999'], 'token 999999 not found'],
      [['token', 'rotate'], 'token: unknown action "rotate"; actions are create, list, revoke'],
    ];
    for (const [args, message] of cases) expectError(await manage(...args), message);
    expect(await snapshot(cli.db)).toEqual(before);
  });

  it('help lists the options and needs no database', async () => {
    const result = await run('manage', ['token', 'create', '--help']);
    expectOk(result);
    expect(result.stdout.split('\n')[0]).toBe(
      'usage: novanet-manage token create --project_id=PROJECT [--role=admin|member] [--description=TEXT]',
    );
    for (const option of ['--project_id=PROJECT', '--role=admin|member', '--description=TEXT'])
      expect(result.stdout).toContain(`  ${option} `);
    const overview = await run('manage', ['--help']);
    for (const command of ['token create', 'token list', 'token revoke'])
      expect(overview.stdout).toMatch(new RegExp(`^  ${command} +\\S`, 'm'));
  });
});
