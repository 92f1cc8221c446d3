import { TokenService } from '../../auth/tokens.js';
import { intOption, noMorePositionals, stringOption, UsageError } from '../args.js';
import { formatTable, shortTime } from '../table.js';
import type { Category } from './command.js';

export const tokenCommands: Category = {
  create: {
    usage: 'novanet-manage token create --project_id=PROJECT [--role=admin|member] [--description=TEXT]',
    summary: 'Create an API token; prints the token alone (it is stored hashed and cannot be shown again).',
    options: {
      project_id: { type: 'string', meta: 'PROJECT', help: 'project the token acts for' },
      role: { type: 'string', meta: 'admin|member', help: 'member (default): its own project; admin: every project' },
      description: { type: 'string', meta: 'TEXT', help: 'what the token is for (shown by token list)' },
    },
    async run(parsed, { db }, io) {
      noMorePositionals(parsed, 0, 'token create');
      const projectId = stringOption(parsed, 'project_id');
      if (projectId === undefined) throw new UsageError('token create: give the project, as --project_id=PROJECT');
      const created = await new TokenService({ db }).create(
        projectId,
        stringOption(parsed, 'role') ?? 'member',
        stringOption(parsed, 'description'),
      );
      // The token alone on stdout, so scripts can do TOKEN=$(novanet-manage token create ...).
      io.stdout(`${created.token}\n`);
    },
  },
  list: {
    usage: 'novanet-manage token list [--project_id=PROJECT]',
    summary: 'List API tokens (never the tokens themselves).',
    options: { project_id: { type: 'string', meta: 'PROJECT', help: 'only tokens of this project' } },
    async run(parsed, { db }, io) {
      noMorePositionals(parsed, 0, 'token list');
      const projectId = stringOption(parsed, 'project_id');
      const rows = await new TokenService({ db }).list(projectId === undefined ? {} : { projectId });
      if (rows.length === 0) {
        io.stdout('No token found.\n');
        return;
      }
      io.stdout(
        formatTable(
          ['id', 'project', 'role', 'description', 'created'],
          rows.map((row) => [row.id, row.projectId, row.role, row.description, shortTime(row.createdAt)]),
        ),
      );
    },
  },
  revoke: {
    usage: 'novanet-manage token revoke --id=N',
    summary: 'Revoke an API token at once.',
    options: { id: { type: 'int', meta: 'N', help: 'id of the token (from token list)' } },
    async run(parsed, { db }, io) {
      noMorePositionals(parsed, 1, 'token revoke');
      const positional = parsed.positionals[0];
      if (positional !== undefined && !/^\d{1,15}$/.test(positional)) {
        throw new UsageError(`token revoke: the id must be a whole number, got ${JSON.stringify(positional.slice(0, 40))}`);
      }
      const given = [intOption(parsed, 'id'), positional === undefined ? undefined : Number(positional)].filter(
        (value) => value !== undefined,
      );
      if (given.length !== 1) throw new UsageError('token revoke: give the token once, as --id=N');
      const revoked = await new TokenService({ db }).revoke({ id: given[0]! });
      io.stdout(`revoked token ${revoked.id} (project ${revoked.projectId}, ${revoked.role})\n`);
    },
  },
};
