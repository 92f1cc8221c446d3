import { describe, expect, it } from 'vitest';
import { Invalid } from '../src/errors.js';
import {
  booleanText,
  hostnameField,
  integerField,
  integerText,
  interfaceName,
  isUuid,
  labelField,
  projectIdField,
  quote,
  uuidField,
} from '../src/fields.js';

describe('quote', () => {
  it('shortens long user text in messages', () => {
    const shown = quote('x'.repeat(500));
    expect(shown.length).toBeLessThan(70);
    expect(shown).toMatch(/\.\.\."$/);
    expect(quote('eth0')).toBe('"eth0"');
  });
});

describe('interfaceName', () => {
  it('takes what the kernel takes and names the field otherwise', () => {
    for (const name of ['eth0', 'br100', 'vlan4094', 'enp0s31f6.100', 'a_b-c', 'x'.repeat(15)])
      expect(interfaceName(name, 'bridge')).toBe(name);
    for (const name of ['', 'x'.repeat(16), 'eth 0', 'eth0;reboot', '-eth0', 'eth0\n', 'et/h0']) {
      expect(() => interfaceName(name, 'bridge'), name).toThrow(Invalid);
    }
    expect(() => interfaceName('eth 0', 'flat_interface')).toThrow(/^flat_interface must be an interface name/);
  });
});

describe('uuids', () => {
  it('recognises UUIDs in any case and stores them in lower case', () => {
    expect(isUuid('8A0C2E0B-6B1D-4C2E-9F3A-1B2C3D4E5F60')).toBe(true);
    expect(isUuid('8a0c2e0b-6b1d-4c2e-9f3a-1b2c3d4e5f6')).toBe(false);
    expect(uuidField('8A0C2E0B-6B1D-4C2E-9F3A-1B2C3D4E5F60', 'uuid')).toBe('8a0c2e0b-6b1d-4c2e-9f3a-1b2c3d4e5f60');
    expect(() => uuidField('net-1', 'network')).toThrow('network must be a UUID, got "net-1"');
  });
});

describe('labels, projects and hostnames', () => {
  it('refuses what would break a log line or a command', () => {
    expect(labelField('private net')).toBe('private net');
    expect(() => labelField('')).toThrow('label must be 1 to 255 characters, got 0');
    expect(() => labelField('a\nb', 'pool')).toThrow(/^pool must not contain control characters/);
    expect(() => labelField('a\u202eb')).toThrow(Invalid);
    expect(projectIdField('ops@example.org')).toBe('ops@example.org');
    expect(() => projectIdField('a b')).toThrow(/^project_id must be 1-255 letters/);
    expect(hostnameField('compute-1.example.org', 'host')).toBe('compute-1.example.org');
    for (const name of ['-a', 'a-', 'a..b', 'a_b', 'x'.repeat(64), `${'a.'.repeat(127)}a`])
      expect(() => hostnameField(name, 'host'), name).toThrow(/^host must be a DNS name/);
  });
});

describe('integers and booleans as text', () => {
  it('reads integers of up to 15 digits and nothing else', () => {
    expect(integerText(' 42 ')).toBe(42);
    expect(integerText('-1')).toBe(-1);
    for (const text of ['', '4.5', '1e3', '0x10', '9'.repeat(16), '12a']) expect(integerText(text), text).toBeUndefined();
    expect(integerField(4094, 'vlan', 1, 4094)).toBe(4094);
    expect(() => integerField(4095, 'vlan', 1, 4094)).toThrow('vlan must be an integer from 1 to 4094, got "4095"');
    expect(() => integerField(1.5, 'mtu', 68, 65535)).toThrow(Invalid);
  });

  it("reads oslo.config's spellings of true and false", () => {
    for (const text of ['true', 'True', ' T ', 'yes', 'y', 'on', '1']) expect(booleanText(text), text).toBe(true);
    for (const text of ['false', 'F', 'no', 'n', 'OFF', '0']) expect(booleanText(text), text).toBe(false);
    for (const text of ['', 'maybe', '2', 'tru']) expect(booleanText(text), text).toBeUndefined();
  });
});
