import { readFileSync } from 'node:fs';

/**
 * novanet's version, from its package.json: next to src/ when run from the sources,
 * next to dist/ when built; the first one found that is novanet's.
 */
function readVersion(): string {
  for (const up of ['../package.json', '../../package.json']) {
    try {
      const parsed = JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (parsed.name === 'novanet' && typeof parsed.version === 'string') return parsed.version;
    } catch {
      // Not there: the other layout.
    }
  }
  return 'unknown';
}

export const VERSION = readVersion();
