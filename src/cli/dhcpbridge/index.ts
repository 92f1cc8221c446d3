import { Invalid } from '../../errors.js';
import { quote } from '../../fields.js';
import { parseAddress } from '../../ipam/address.js';
import { UsageError } from '../args.js';
import { type Io, runCommand, withContext } from '../run.js';

const USAGE = 'usage: novanet-dhcpbridge [--config-file=FILE] add|old|del MAC IP [HOSTNAME] | init';

/**
 * dnsmasq's --dhcp-script (nova-dhcpbridge's successor). The database is the lease
 * store (dnsmasq runs with --leasefile-ro): `add`/`old` mark the address leased,
 * `del` releases it, `init` prints the network's leases in dnsmasq's lease-file form
 * so they survive a dnsmasq restart. NETWORK_ID comes from dnsmasq's environment.
 */
export async function dhcpbridge(argv: string[], io: Io): Promise<number> {
  return runCommand(io, async () => {
    let configFile: string | undefined;
    const args = [...argv];
    // Exactly --config-file or --config-file=...: a prefix match took --config-filename=x.
    const isConfigFile = (arg: string) => /^--config[-_]file(=|$)/.test(arg);
    const flag = args.findIndex(isConfigFile);
    if (flag !== -1) {
      const [option] = args.splice(flag, 1);
      configFile = option!.includes('=') ? option!.slice(option!.indexOf('=') + 1) : args.splice(flag, 1)[0];
      if (!configFile) throw new UsageError(`--config-file needs a value\n${USAGE}`);
      // A second one would otherwise pass silently as the HOSTNAME argument.
      if (args.some(isConfigFile)) throw new UsageError(`--config-file given more than once\n${USAGE}`);
    }
    const [action, mac, ip] = args;
    if (action === 'init') {
      if (args.length !== 1) throw new UsageError(USAGE);
      const networkId = Number(io.env.NETWORK_ID);
      if (!Number.isSafeInteger(networkId) || networkId <= 0)
        throw new Invalid('init needs NETWORK_ID in the environment (set by the service when it starts dnsmasq)');
      return withContext(configFile, io, async ({ manager }) => {
        for (const lease of await manager.leases.list(networkId)) {
          io.stdout(`${Math.floor(lease.expiresAt.getTime() / 1000)} ${lease.mac} ${lease.address} ${lease.hostname ?? '*'} *\n`);
        }
      });
    }
    if (!['add', 'old', 'del'].includes(action ?? '') || mac === undefined || ip === undefined || args.length > 4) {
      throw new UsageError(USAGE);
    }
    // dnsmasq names the IA of a DHCPv6 lease; a v4 lease has none.
    if (io.env.DNSMASQ_IAID !== undefined) return ipv6Lease(mac, ip);
    return withContext(configFile, io, async ({ manager }) => {
      // `old` is a renewal or dnsmasq re-reading a lease at start: the lease is live.
      if (action === 'del') await manager.leases.release(ip, mac);
      else await manager.leases.lease(ip, mac);
    });
  });
}

const DUID = /^[0-9a-f]{2}(:[0-9a-f]{2})+$/i;

/**
 * A DHCPv6 lease (ipv6_backend = account_identifier): dnsmasq names the client by its
 * DUID. Checked, not kept: the address is the VIF's static entry, derived from its MAC
 * and project, and a restarted dnsmasq hands it out again.
 */
function ipv6Lease(duid: string, address: string): number {
  parseAddress(address, 'address', 6);
  if (!DUID.test(duid)) throw new Invalid(`DUID must be hex bytes separated by colons, got ${quote(duid)}`);
  return 0;
}
