import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readText, writeAtomically, writeIfChanged } from '../../../src/linux_net/dnsmasq/files.js';

describe('dnsmasq state files', () => {
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'novanet-files-'));
  });

  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes a changed text and skips an unchanged one', () => {
    const path = join(dir, 'nova-br100.hosts');
    expect(writeIfChanged(path, 'a\n')).toBe(true);
    const written = statSync(path).mtimeMs;
    expect(writeIfChanged(path, 'a\n')).toBe(false);
    expect(statSync(path).mtimeMs).toBe(written);
    expect(writeIfChanged(path, 'b\n')).toBe(true);
    expect(readFileSync(path, 'utf8')).toBe('b\n');
  });

  it('writes beside and renames, leaving no temporary file', () => {
    writeAtomically(join(dir, 'fa-16-3e-00-00-05'), 'line\n');
    expect(readdirSync(dir)).toEqual(['fa-16-3e-00-00-05']);
    expect(readFileSync(join(dir, 'fa-16-3e-00-00-05'), 'utf8')).toBe('line\n');
  });

  it('reads a missing file as undefined', () => {
    expect(readText(join(dir, 'missing'))).toBeUndefined();
    writeAtomically(join(dir, 'present'), '');
    expect(readText(join(dir, 'present'))).toBe('');
  });
});
