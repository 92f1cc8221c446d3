import { helpText, parseArgs, UsageError } from '../args.js';
import { EXIT_USAGE, type Io, runCommand, withContext } from '../run.js';
import type { Category } from './command.js';
import { dbCommands } from './db.js';
import { fixedCommands } from './fixed.js';
import { floatingCommands } from './floating.js';
import { hostCommands } from './host.js';
import { networkCommands } from './network.js';
import { projectCommands } from './project.js';
import { secgroupCommands } from './secgroup.js';
import { tokenCommands } from './token.js';

/** nova-manage's categories and actions. */
export const CATEGORIES: Record<string, Category> = {
  network: networkCommands,
  fixed: fixedCommands,
  floating: floatingCommands,
  project: projectCommands,
  db: dbCommands,
  token: tokenCommands,
  host: hostCommands,
  secgroup: secgroupCommands,
};

function overview(): string {
  const lines = ['usage: novanet-manage [--config-file=FILE] CATEGORY ACTION [options]', '', 'commands:'];
  for (const [category, actions] of Object.entries(CATEGORIES)) {
    for (const [action, command] of Object.entries(actions)) lines.push(`  ${`${category} ${action}`.padEnd(20)}${command.summary}`);
  }
  lines.push('', "Run 'novanet-manage CATEGORY ACTION --help' for an action's options.");
  return `${lines.join('\n')}\n`;
}

/** Takes `--config-file` wherever it stands, as oslo.config did. */
function extractConfigFile(argv: string[]): { configFile: string | undefined; rest: string[] } {
  const rest: string[] = [];
  let configFile: string | undefined;
  for (let index = 0; index < argv.length; index++) {
    const token = argv[index]!;
    const match = /^--config[-_]file(?:=(.*))?$/.exec(token);
    if (!match) {
      rest.push(token);
      continue;
    }
    if (configFile !== undefined) throw new UsageError('--config-file given more than once');
    configFile = match[1] ?? argv[++index];
    if (configFile === undefined || configFile === '') throw new UsageError('--config-file needs a value (FILE)');
  }
  return { configFile, rest };
}

/** `novanet-manage ARGV...`: returns the exit status. */
export async function manage(argv: string[], io: Io): Promise<number> {
  return runCommand(io, async () => {
    const { configFile, rest } = extractConfigFile(argv);
    const [categoryName, actionName, ...args] = rest;
    if (categoryName === undefined || categoryName === '--help' || categoryName === '-h' || categoryName === 'help') {
      // Asked for: stdout, status 0. Nothing given: a usage error, so stderr and 2.
      if (categoryName === undefined) {
        io.stderr(overview());
        return EXIT_USAGE;
      }
      io.stdout(overview());
      return 0;
    }
    const category = CATEGORIES[categoryName];
    if (!category)
      throw new UsageError(
        `unknown category ${JSON.stringify(categoryName.slice(0, 40))}; categories are ${Object.keys(CATEGORIES).join(', ')}`,
      );
    const command = actionName === undefined ? undefined : category[actionName];
    if (!command) {
      const known = Object.keys(category).join(', ');
      throw new UsageError(
        actionName === undefined
          ? `${categoryName}: give an action (${known})`
          : `${categoryName}: unknown action ${JSON.stringify(actionName.slice(0, 40))}; actions are ${known}`,
      );
    }
    if (args.includes('--help') || args.includes('-h')) {
      io.stdout(helpText(command.usage, command.summary, command.options));
      return 0;
    }
    const parsed = parseArgs(args, command.options, `${categoryName} ${actionName}`);
    return withContext(configFile, io, (context) => command.run(parsed, context, io));
  });
}
