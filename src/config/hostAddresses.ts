import { parseAddress } from '../ipam/address.js';
import type { HostAddresses } from '../ipam/special.js';
import type { Config } from './options.js';

/** The addresses this host's configuration names as its own: none of them may be a VM's or a floating IP. */
export function hostAddresses(config: Config): HostAddresses {
  const options = ['my_ip', 'routing_source_ip', 'metadata_host', 'vpn_ip'] as const;
  return options.map((option) => ({ option, address: parseAddress(config[option], option, 4) }));
}
