import { existsSync, readFileSync } from 'node:fs';
import type { Executor } from '../command.js';

/**
 * A running dnsmasq as /proc shows it: which process a pid file names, whether it is
 * still that dnsmasq, with which arguments, and stopping it. The pid file alone is no
 * proof: a dnsmasq that died leaves it behind, and its pid may be reused.
 */

/** The pid from the pid file, if that process is alive and is the dnsmasq given this pid file. */
export function runningPid(pidFile: string): number | undefined {
  if (!existsSync(pidFile)) return undefined;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
  // A stale pid file may name a reused pid: it must be a dnsmasq given this pid file.
  return dnsmasqArguments(readCmdline(pid))?.includes(`--pid-file=${pidFile}`) ? pid : undefined;
}

/**
 * The arguments after the `dnsmasq` word of a command line (`env ... dnsmasq ARGS`, or
 * /proc's `dnsmasq ARGS`: dnsmasq keeps its argv as given, also once daemonised), or
 * undefined when there is no such word. The word may be a path to the binary.
 */
export function dnsmasqArguments(argv: string[] | undefined): string[] | undefined {
  const index = argv?.findIndex((part) => part === 'dnsmasq' || (part.startsWith('/') && part.endsWith('/dnsmasq'))) ?? -1;
  return index === -1 ? undefined : argv!.slice(index + 1);
}

/** The running process's dnsmasq arguments equal those of `argv`: a SIGHUP cannot change them, only a restart. */
export function sameCommandLine(pid: number, argv: string[]): boolean {
  const running = dnsmasqArguments(readCmdline(pid));
  const wanted = dnsmasqArguments(argv) ?? [];
  return running !== undefined && running.join('\0') === wanted.join('\0');
}

/**
 * Stops a dnsmasq and waits until it has let go of its sockets, or its successor
 * could not bind ("Address already in use"). SIGKILL if SIGTERM was not enough.
 */
export async function stopDnsmasq(executor: Executor, pid: number): Promise<void> {
  for (const signal of ['-TERM', '-KILL']) {
    await executor.run({ argv: ['kill', signal, String(pid)], accept: [0, 1] });
    for (let attempt = 0; attempt < 50; attempt++) {
      if (!holdsResources(pid)) return;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

/**
 * Whether the process still exists and is not a zombie. Its cmdline is no test: an
 * exiting process loses it (its memory) before it closes its files.
 */
function holdsResources(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

function readCmdline(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      .split('\0')
      .filter((part) => part !== '');
  } catch {
    return undefined;
  }
}
