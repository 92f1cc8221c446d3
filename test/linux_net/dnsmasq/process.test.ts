import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { dnsmasqArgs, type NetworkFiles, networkFiles } from '../../../src/linux_net/dnsmasq/config.js';
import { dnsmasqArguments, runningPid, sameCommandLine, stopDnsmasq } from '../../../src/linux_net/dnsmasq/process.js';
import { FakeDnsmasqs, NETWORK, dnsmasqOptions as options } from '../../support/dnsmasq.js';
import { RecordingExecutor } from '../../support/recordingExecutor.js';

describe('dnsmasqArguments', () => {
  it('takes what follows the dnsmasq word, also after env or as a path to the binary', () => {
    expect(dnsmasqArguments(['env', 'NETWORK_ID=1', 'dnsmasq', '--strict-order', '--bind-interfaces'])).toEqual([
      '--strict-order',
      '--bind-interfaces',
    ]);
    expect(dnsmasqArguments(['/usr/sbin/dnsmasq', '--strict-order'])).toEqual(['--strict-order']);
    expect(dnsmasqArguments(['dnsmasq'])).toEqual([]);
  });

  it('is undefined for another program or no command line at all', () => {
    expect(dnsmasqArguments(['sleep', '30'])).toBeUndefined();
    expect(dnsmasqArguments(['/opt/notdnsmasq', '--strict-order'])).toBeUndefined();
    expect(dnsmasqArguments([])).toBeUndefined();
    expect(dnsmasqArguments(undefined)).toBeUndefined();
  });
});

describe('a running dnsmasq in /proc', () => {
  let statePath: string;
  let files: NetworkFiles;
  let fakes: FakeDnsmasqs;

  beforeEach(() => {
    statePath = mkdtempSync(join(tmpdir(), 'novanet-dnsmasq-'));
    files = networkFiles(statePath, 'br100');
    fakes = new FakeDnsmasqs();
  });

  afterEach(() => {
    fakes.killAll();
    rmSync(statePath, { recursive: true, force: true });
  });

  const argvFor = (network = NETWORK, networkFilesOf = files) => dnsmasqArgs(network, networkFilesOf, options(statePath));

  it('recognises a running dnsmasq by its pid file', async () => {
    const pid = await fakes.start(argvFor(), files.pid);
    expect(runningPid(files.pid)).toBe(pid);
    expect(runningPid(networkFiles(statePath, 'br101').pid)).toBeUndefined();
  });

  it("does not take another network's dnsmasq for this one's: its pid file is not ours", async () => {
    const other = networkFiles(statePath, 'br101');
    const pid = await fakes.start(argvFor({ ...NETWORK, bridge: 'br101' }, other), files.pid);
    expect(runningPid(files.pid)).toBeUndefined();
    expect(runningPid(other.pid)).toBeUndefined();
    writeFileSync(other.pid, `${pid}\n`);
    expect(runningPid(other.pid)).toBe(pid);
  });

  it('finds none for a missing pid file, garbage in it, a dead process or one that is not a dnsmasq', async () => {
    expect(runningPid(files.pid)).toBeUndefined();
    await fakes.start(argvFor(), files.pid);
    writeFileSync(files.pid, 'not a pid\n');
    expect(runningPid(files.pid)).toBeUndefined();
    const dead = spawn('true');
    await new Promise((resolve) => dead.on('exit', resolve));
    writeFileSync(files.pid, `${dead.pid}\n`);
    expect(runningPid(files.pid)).toBeUndefined();
    writeFileSync(files.pid, `${process.pid}\n`);
    expect(runningPid(files.pid)).toBeUndefined();
  });

  it('compares the running command line with the one wanted, from the dnsmasq word on', async () => {
    const pid = await fakes.start(argvFor(), files.pid);
    expect(sameCommandLine(pid, argvFor())).toBe(true);
    // The environment before the word is not part of what dnsmasq runs with.
    expect(sameCommandLine(pid, ['env', 'NETWORK_ID=9', ...argvFor().slice(argvFor().indexOf('dnsmasq'))])).toBe(true);
    expect(sameCommandLine(pid, argvFor({ ...NETWORK, dhcpStart: '10.0.0.10' }))).toBe(false);
    expect(sameCommandLine(process.pid, argvFor())).toBe(false);
  });

  it('stops a dnsmasq with SIGTERM and returns once it is gone', async () => {
    const pid = await fakes.start(argvFor(), files.pid);
    const executor = new RecordingExecutor();
    fakes.signalThrough(executor);
    await stopDnsmasq(executor, pid);
    expect(executor.commands).toEqual([{ argv: ['kill', '-TERM', String(pid)], accept: [0, 1] }]);
    expect(existsSync(`/proc/${pid}/cmdline`) && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('dnsmasq')).toBe(false);
  });

  it('escalates to SIGKILL when SIGTERM was not enough', async () => {
    const pid = await fakes.start(argvFor(), files.pid);
    const executor = new RecordingExecutor();
    fakes.signalThrough(executor);
    executor.once(['kill', '-TERM'], {});
    await stopDnsmasq(executor, pid);
    expect(executor.argvs()).toEqual([
      ['kill', '-TERM', String(pid)],
      ['kill', '-KILL', String(pid)],
    ]);
  });
});
