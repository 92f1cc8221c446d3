/** The `[api]` options: names in the file and the environment, defaults, validation. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { envName, loadConfig } from '../../src/config/load.js';

const dir = mkdtempSync(join(tmpdir(), 'novanet-api-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function load(text: string, env: Record<string, string> = {}) {
  const file = join(dir, 'novanet.conf');
  writeFileSync(file, text);
  const warnings: string[] = [];
  const config = loadConfig({ file, env, warn: (message) => warnings.push(message) });
  return { config, warnings };
}

describe('[api] options', () => {
  it('default to 127.0.0.1:8774 and 64 KiB bodies', () => {
    const { config, warnings } = load('');
    expect([config.api_host, config.api_port, config.api_max_body_bytes]).toEqual(['127.0.0.1', 8774, 65536]);
    expect(warnings).toEqual([]);
  });

  it('are read as host, port and max_body_bytes of [api], beside [DEFAULT] host', () => {
    const { config, warnings } = load('[DEFAULT]\nhost = net1\n\n[api]\nhost = 0.0.0.0\nport = 18774\nmax_body_bytes = 1024\n');
    expect(config.host).toBe('net1');
    expect([config.api_host, config.api_port, config.api_max_body_bytes]).toEqual(['0.0.0.0', 18774, 1024]);
    expect(warnings).toEqual([]);
  });

  it('take NOVANET_API_* from the environment', () => {
    expect([envName('api_host'), envName('api_port'), envName('api_max_body_bytes')]).toEqual([
      'NOVANET_API_HOST',
      'NOVANET_API_PORT',
      'NOVANET_API_MAX_BODY_BYTES',
    ]);
    const { config } = load('[api]\nport = 1\n', { NOVANET_API_PORT: '0', NOVANET_API_HOST: '::1' });
    expect([config.api_host, config.api_port]).toEqual(['::1', 0]);
  });

  it('refuse bad values naming the option, and warn about unknown [api] keys', () => {
    expect(() => load('[api]\nport = 70000\n')).toThrow('[api] port must be between 0 and 65535, got "70000"');
    expect(() => load('[api]\nhost = 10.0.0.300\n')).toThrow(/^\[api\] host must be an IP address/);
    expect(() => load('[api]\nhost = bad_host!\n')).toThrow('[api] host must be an IP address or a host name, got "bad_host!"');
    expect(load('[api]\nhost = api.example.org\nlisten = 1\n').warnings).toEqual([
      `unknown option [api] listen in ${join(dir, 'novanet.conf')} (ignored)`,
    ]);
    expect(load('[api]\napi_port = 1\n').warnings).toHaveLength(1);
  });
});
