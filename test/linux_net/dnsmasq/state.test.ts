import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hostLine, hostsFile, networkFiles, optsFile } from '../../../src/linux_net/dnsmasq/config.js';
import {
  addHostLines,
  consolidate,
  fingerprint,
  loadedRecord,
  removeHostLines,
  servedState,
} from '../../../src/linux_net/dnsmasq/state.js';
import { HOSTS, NETWORK } from '../../support/dnsmasq.js';

const FILES = networkFiles('/var/lib/novanet', 'br100');
const NEW = { mac: 'fa:16:3e:00:00:05', hostname: 'db-1', address: '10.0.0.5' };
const lines = (hosts: typeof HOSTS) => hosts.map((host) => hostLine(host, 'novalocal'));

describe('loadedRecord', () => {
  it('is the same for the same host lines in any order, and differs when a host or the opts differ', () => {
    const opts = optsFile(NETWORK);
    const record = loadedRecord(lines([...HOSTS, NEW]), opts);
    expect(loadedRecord(lines([NEW, ...HOSTS].reverse()), opts)).toBe(record);
    expect(loadedRecord(lines(HOSTS), opts)).not.toBe(record);
    expect(loadedRecord(lines([...HOSTS, { ...NEW, address: '10.0.0.6' }]), opts)).not.toBe(record);
    expect(loadedRecord(lines([...HOSTS, NEW]), optsFile({ ...NETWORK, mtu: 1450 }))).not.toBe(record);
  });
});

describe('the hosts a dnsmasq holds, host by host', () => {
  it('starts from exactly the hosts of a full ensure, nothing pending', () => {
    const served = servedState(NETWORK, FILES, HOSTS, 'novalocal');
    expect([...served.lines.values()].join('')).toBe(hostsFile(HOSTS, 'novalocal'));
    expect(served.optsText).toBe(optsFile(NETWORK));
    expect(served.unloaded.size).toBe(0);
    expect(fingerprint(served)).toBe(loadedRecord(lines(HOSTS), optsFile(NETWORK)));
  });

  it('takes a new host through the hostsdir, and nothing for a host it already has', () => {
    const served = servedState(NETWORK, FILES, HOSTS, 'novalocal');
    expect(addHostLines(served, [NEW, HOSTS[0]!], 'novalocal')).toEqual({
      added: [{ mac: NEW.mac, line: hostLine(NEW, 'novalocal') }],
      reloadNow: false,
    });
    expect(fingerprint(served)).toBe(loadedRecord(lines([...HOSTS, NEW]), optsFile(NETWORK)));
  });

  it('needs a reload for a changed host, and for one whose MAC or address dnsmasq still holds for a removed host', () => {
    const changed = servedState(NETWORK, FILES, HOSTS, 'novalocal');
    expect(addHostLines(changed, [{ ...HOSTS[0]!, hostname: 'web-2' }], 'novalocal')).toEqual({ added: [], reloadNow: true });
    expect(fingerprint(changed)).toBe(loadedRecord(lines([{ ...HOSTS[0]!, hostname: 'web-2' }, HOSTS[1]!]), optsFile(NETWORK)));
    for (const successor of [
      { ...NEW, address: HOSTS[0]!.address },
      { ...NEW, mac: HOSTS[0]!.mac },
    ]) {
      const served = servedState(NETWORK, FILES, HOSTS, 'novalocal');
      removeHostLines(served, [HOSTS[0]!]);
      expect(addHostLines(served, [successor], 'novalocal').reloadNow).toBe(true);
    }
  });

  it('forgets removed hosts but keeps their MACs and addresses as still held by dnsmasq', () => {
    const served = servedState(NETWORK, FILES, HOSTS, 'novalocal');
    removeHostLines(served, [HOSTS[0]!, NEW]);
    expect([...served.lines.keys()]).toEqual([HOSTS[1]!.mac]);
    expect([...served.unloaded]).toEqual([HOSTS[0]!.mac, HOSTS[0]!.address]);
    expect(fingerprint(served)).toBe(loadedRecord(lines([HOSTS[1]!]), optsFile(NETWORK)));
  });
});

describe('consolidate', () => {
  let statePath: string;

  beforeEach(() => {
    statePath = mkdtempSync(join(tmpdir(), 'novanet-dnsmasq-'));
  });

  afterEach(() => {
    rmSync(statePath, { recursive: true, force: true });
  });

  it('writes every known host into the hosts file and empties the hostsdir', async () => {
    const files = networkFiles(statePath, 'br100');
    mkdirSync(files.hostsdir, { recursive: true });
    const served = servedState(NETWORK, files, HOSTS, 'novalocal');
    addHostLines(served, [NEW], 'novalocal');
    writeFileSync(join(files.hostsdir, 'fa-16-3e-00-00-05'), hostLine(NEW, 'novalocal'));
    await consolidate(served);
    expect(readFileSync(files.hosts, 'utf8')).toBe(hostsFile([...HOSTS, NEW], 'novalocal'));
    expect(readdirSync(files.hostsdir)).toEqual([]);
  });

  it('writes the hosts file also when the hostsdir is gone (stopped meanwhile)', async () => {
    const files = networkFiles(statePath, 'br100');
    mkdirSync(join(statePath, 'networks'));
    await consolidate(servedState(NETWORK, files, HOSTS, 'novalocal'));
    expect(readFileSync(files.hosts, 'utf8')).toBe(hostsFile(HOSTS, 'novalocal'));
  });
});
