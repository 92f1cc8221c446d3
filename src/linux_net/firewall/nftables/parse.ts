/** What can be compared of a table: each chain's definition and rule tags, each map's type and elements. */
export interface TableState {
  chains: Map<string, { head: string; tags: string[] }>;
  maps: Map<string, { type: string; elements: Map<string, string> }>;
}

/** A regular chain's "definition": it has no hook. */
export const REGULAR_CHAIN = 'regular';

/** A base chain's definition, as the desired and the installed table are compared. */
export function chainHead(type: string, hook: string, priority: number, policy: string): string {
  return `type ${type} hook ${hook} priority ${priority}; policy ${policy};`;
}

/** One object of `nft -j list table`'s array (only what we read of it). */
interface JsonObject {
  chain?: { name: string; type?: string; hook?: string; prio?: number; policy?: string };
  rule?: { chain: string; comment?: string };
  map?: { name: string; type: string | string[]; map: string; elem?: unknown[] };
  set?: { name: string };
}

/** Reads `nft -j list table ip novanet`; other objects of the table (a set made by hand) count as a differing structure. */
export function parseListing(json: string): TableState {
  const objects = (JSON.parse(json) as { nftables: JsonObject[] }).nftables;
  const state: TableState = { chains: new Map(), maps: new Map() };
  for (const object of objects) {
    if (object.chain) {
      const { name, type, hook, prio, policy } = object.chain;
      state.chains.set(name, { head: type ? chainHead(type, hook ?? '', prio ?? 0, policy ?? 'accept') : REGULAR_CHAIN, tags: [] });
    } else if (object.rule) {
      state.chains.get(object.rule.chain)?.tags.push(object.rule.comment ?? 'untagged');
    } else if (object.map) {
      const { name, type, map, elem } = object.map;
      const key = Array.isArray(type) ? type : [type];
      state.maps.set(name, { type: `${key.join(' . ')} : ${map}`, elements: new Map((elem ?? []).map(elementPair)) });
    } else if (object.set) {
      state.maps.set(object.set.name, { type: 'set', elements: new Map() });
    }
  }
  return state;
}

/** `["10.0.0.2", "10.0.0.3"]` or `[{"concat": ["10.0.0.2", "eth0"]}, "192.0.2.65"]`; an element with options wraps its key in `{"elem": {"val": ...}}`. */
function elementPair(entry: unknown): [string, string] {
  const [key, value] = entry as [unknown, unknown];
  const plain = (part: unknown): string => {
    if (typeof part === 'string' || typeof part === 'number') return String(part);
    const object = part as { concat?: unknown[]; elem?: { val: unknown } };
    if (object.concat) return object.concat.map(plain).join(' . ');
    if (object.elem) return plain(object.elem.val);
    return JSON.stringify(part);
  };
  return [plain(key), plain(value)];
}
