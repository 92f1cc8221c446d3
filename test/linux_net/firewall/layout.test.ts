import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The firewall folder's shape: the backends know nothing of each other, and only
 * index.ts (the backend choice) knows both; nothing inside imports it.
 */
const FOLDER = resolve(import.meta.dirname, '../../../src/linux_net/firewall');

/** Each module of the folder with the modules it imports, as paths relative to the folder. */
function imports(): [string, string[]][] {
  const files = readdirSync(FOLDER, { recursive: true, encoding: 'utf8' }).filter((file) => file.endsWith('.ts'));
  return files.map((file) => {
    const text = readFileSync(join(FOLDER, file), 'utf8');
    const targets = [...text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+'(\.{1,2}\/[^']+)'/gms)].map((match) =>
      relative(FOLDER, resolve(FOLDER, dirname(file), match[1]!)).replace(/\.js$/, '.ts'),
    );
    return [file, targets];
  });
}

describe('src/linux_net/firewall', () => {
  it('keeps the backends apart: neither imports the other, nothing imports index.ts', () => {
    const wrong = imports().flatMap(([file, targets]) =>
      targets
        .filter(
          (target) =>
            target === 'index.ts' ||
            (file.startsWith('iptables/') && target.startsWith('nftables/')) ||
            (file.startsWith('nftables/') && target.startsWith('iptables/')) ||
            (!file.startsWith('iptables/') && !file.startsWith('nftables/') && file !== 'index.ts' && /^(ip|nf)tables\//.test(target)),
        )
        .map((target) => `${file} imports ${target}`),
    );
    expect(wrong).toEqual([]);
  });

  it('finds the imports it checks', () => {
    expect(imports().find(([file]) => file === 'index.ts')?.[1]).toEqual([
      '../command.ts',
      'iptables/driver.ts',
      'nftables/driver.ts',
      'state.ts',
    ]);
  });
});
