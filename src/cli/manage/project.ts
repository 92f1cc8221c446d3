import { optionOrPositional } from '../args.js';
import type { Category } from './command.js';

export const projectCommands: Category = {
  scrub: {
    usage: 'novanet-manage project scrub --project=PROJECT',
    summary: 'Take every network away from a project (refused while it still holds fixed IPs).',
    options: { project: { type: 'string', meta: 'PROJECT', help: 'the project' } },
    async run(parsed, { manager }, io) {
      const project = optionOrPositional(parsed, 'project', 'PROJECT', 'project scrub');
      const scrubbed = await manager.networks.scrub(project);
      io.stdout(`disassociated ${scrubbed.length} network(s) from project ${project}\n`);
    },
  },
};
