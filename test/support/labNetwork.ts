import { BIN, Lab, requireBuild, run } from '../../tools/lab.js';

/** A lab with one FlatDHCP network and a floating pool, migrated and ready for a service. */
export interface FlatDhcpLab {
  lab: Lab;
  configFile: string;
  /** An API token of project p1 (role as asked). */
  token: string;
  /** Runs novanet-manage against the lab's config; throws with its stderr on failure. */
  manage(args: string[]): Promise<string>;
}

/**
 * Builds a lab (VMs, flat_interface eth1 172.31.0.10/24), writes its config, syncs the
 * schema, creates network 10.0.0.0/24 and floating pool "public" over `floatingRange`,
 * and makes a token for project p1. `onLab` gets the lab as soon as it exists, so the
 * caller's afterAll destroys it even when a later step fails.
 */
export async function flatDhcpLab(options: {
  vms: number;
  floatingRange: string;
  config?: Record<string, string>;
  role?: 'admin' | 'member';
  onLab: (lab: Lab) => void;
}): Promise<FlatDhcpLab> {
  requireBuild();
  const lab = await Lab.create({ vms: options.vms, flatInterfaceAddress: '172.31.0.10/24' });
  options.onLab(lab);
  const configFile = lab.writeConfig(options.config);
  const manage = async (args: string[]): Promise<string> => {
    const result = await run([process.execPath, BIN.manage, '--config-file', configFile, ...args]);
    if (result.code !== 0) throw new Error(`novanet-manage ${args.join(' ')} failed (${result.code}): ${result.stderr.trim()}`);
    return result.stdout;
  };
  await manage(['db', 'sync']);
  await manage(['network', 'create', '--label=private', '--fixed_range_v4=10.0.0.0/24']);
  await manage(['floating', 'create', `--ip_range=${options.floatingRange}`, '--pool=public']);
  const token = (await manage(['token', 'create', '--project_id=p1', ...(options.role === 'admin' ? ['--role=admin'] : [])])).trim();
  return { lab, configFile, token, manage };
}
