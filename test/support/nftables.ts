/** What the nftables tests share: floating IPs, the table wanted for a state, and the kernel's listing of a table. */
import { FloatingElements, MAPS } from '../../src/linux_net/firewall/nftables/elements.js';
import { type NftRuleset, ruleTag } from '../../src/linux_net/firewall/nftables/plan.js';
import { renderChains } from '../../src/linux_net/firewall/nftables/render.js';
import type { FirewallState } from '../../src/linux_net/firewall/state.js';

export const FLOATING = [
  { address: '192.0.2.50', fixed: '10.0.0.3', interface: 'eth0' },
  { address: '192.0.2.51', fixed: '10.0.0.4', interface: 'eth2' },
];

export const LIST = ['nft', '-j', 'list', 'table', 'ip', 'novanet'];

/** The table the driver wants for `state`: its chains rendered, its floating IPs as the maps' elements. */
export function wanted(state: FirewallState): NftRuleset {
  const elements = new FloatingElements();
  elements.update(state.floating);
  return { chains: renderChains(state), elements: elements.elements };
}

export const noTable = { code: 1, stderr: 'Error: No such file or directory\nlist table ip novanet\n' };

/** What `nft -j list table ip novanet` prints for a table holding `ruleset` (as the kernel would). */
export function listing(ruleset: NftRuleset, edit: (objects: object[]) => object[] = (objects) => objects): string {
  const objects: object[] = [{ metainfo: { version: '1.0.6' } }, { table: { family: 'ip', name: 'novanet', handle: 1 } }];
  for (const spec of MAPS) {
    const elem = [...ruleset.elements[spec.name]].map(([key, value]) => [key.includes(' . ') ? { concat: key.split(' . ') } : key, value]);
    objects.push({
      map: {
        family: 'ip',
        name: spec.name,
        table: 'novanet',
        type: spec.key.length === 1 ? spec.key[0] : spec.key,
        map: 'ipv4_addr',
        ...(elem.length > 0 ? { elem } : {}),
      },
    });
  }
  for (const chain of ruleset.chains) {
    objects.push({
      // nft lists a regular chain without type, hook, priority or policy.
      chain:
        chain.type === undefined
          ? { family: 'ip', table: 'novanet', name: chain.name }
          : {
              family: 'ip',
              table: 'novanet',
              name: chain.name,
              type: chain.type,
              hook: chain.hook,
              prio: chain.priority,
              policy: 'accept',
            },
    });
  }
  for (const chain of ruleset.chains) {
    for (const rule of chain.rules)
      objects.push({ rule: { family: 'ip', table: 'novanet', chain: chain.name, comment: ruleTag(rule), expr: [] } });
  }
  return JSON.stringify({ nftables: edit(objects) });
}
