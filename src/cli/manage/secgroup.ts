import type { SecurityGroupRuleView } from '../../managers/views.js';
import { noMorePositionals, optionOrPositional, stringOption } from '../args.js';
import { formatTable } from '../table.js';
import type { Category } from './command.js';

/** A rule as one cell each: protocol, ports (or ICMP type/code), source. */
function ruleCells({ rule, source }: SecurityGroupRuleView): string[] {
  const ports =
    rule.protocol === null
      ? 'any'
      : rule.protocol === 'icmp'
        ? `type ${rule.fromPort} code ${rule.toPort}`
        : `${rule.fromPort}-${rule.toPort}`;
  return [String(rule.id), rule.protocol ?? 'any', ports, source ? `group ${source.name} (${source.projectId})` : rule.cidr!];
}

export const secgroupCommands: Category = {
  list: {
    usage: 'novanet-manage secgroup list [--project_id=PROJECT]',
    summary: 'List security groups: rules, members, and the hosts their members are on.',
    options: { project_id: { type: 'string', meta: 'PROJECT', help: 'only this project' } },
    async run(parsed, { manager }, io) {
      noMorePositionals(parsed, 0, 'secgroup list');
      const projectId = stringOption(parsed, 'project_id');
      const found = await manager.securityGroups.withMembers(projectId === undefined ? {} : { projectId });
      if (found.length === 0) {
        io.stdout(projectId === undefined ? 'No security group yet.\n' : `No security group in project ${projectId}.\n`);
        return;
      }
      io.stdout(
        formatTable(
          ['id', 'project', 'name', 'description', 'rules', 'members', 'hosts'],
          found.map((entry) => [
            entry.group.id,
            entry.group.projectId,
            entry.group.name,
            entry.group.description,
            entry.rules.length,
            entry.members.length,
            [...new Set(entry.members.flatMap((member) => member.hosts))].sort().join(','),
          ]),
        ),
      );
    },
  },
  show: {
    usage: 'novanet-manage secgroup show --id=ID',
    summary: 'One security group: its rules, and each member with the hosts its ports are on.',
    options: { id: { type: 'string', meta: 'ID', help: 'the group id (as in secgroup list)' } },
    async run(parsed, { manager }, io) {
      const id = optionOrPositional(parsed, 'id', 'ID', 'secgroup show');
      const [entry] = await manager.securityGroups.withMembers({ id });
      const { group } = entry!;
      io.stdout(`security group ${group.id}: ${group.name} (project ${group.projectId})\n${group.description}\n\n`);
      io.stdout(
        entry!.rules.length === 0
          ? 'No rules: nothing enters but what the host always allows.\n'
          : formatTable(['rule', 'protocol', 'ports', 'source'], entry!.rules.map(ruleCells)),
      );
      io.stdout('\n');
      io.stdout(
        entry!.members.length === 0
          ? 'No members.\n'
          : formatTable(
              ['member instance', 'hosts'],
              entry!.members.map((member) => [member.instanceUuid, member.hosts.join(',')]),
            ),
      );
    },
  },
};
