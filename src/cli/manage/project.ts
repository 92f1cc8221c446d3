import { UsageError, noMorePositionals, stringOption } from '../args.js';
import type { Category } from './command.js';

export const projectCommands: Category = {
  scrub: {
    usage: 'novanet-manage project scrub --project=PROJECT',
    summary: "Take every network away from a project (refused while it still holds fixed IPs).",
    options: { project: { type: 'string', meta: 'PROJECT', help: 'the project' } },
    async run(parsed, { manager }, io) {
      noMorePositionals(parsed, 1, 'project scrub');
      const given = [stringOption(parsed, 'project'), parsed.positionals[0]].filter((value) => value !== undefined);
      if (given.length !== 1) throw new UsageError('project scrub: give the project once, as --project=PROJECT');
      const scrubbed = await manager.scrubProject(given[0]!);
      io.stdout(`disassociated ${scrubbed.length} network(s) from project ${given[0]}\n`);
    },
  },
};
