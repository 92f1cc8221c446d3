import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll } from 'vitest';
import { type ProcessExecutor, processExecutor } from '../../src/linux_net/executor.js';

function has(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Root and the end-to-end tier's tools (DESIGN.md); without them the real-kernel tests cannot run. */
export function kernelAvailable(tools: string[]): boolean {
  return process.getuid?.() === 0 && ['ip', ...tools].every(has);
}

/** Deletes the namespace `ns` if it is there (after a test file, also one that failed halfway). */
export function deleteNamespace(ns: string): void {
  if (
    execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
      .split('\n')
      .some((line) => line.split(' ')[0] === ns)
  ) {
    execFileSync('ip', ['netns', 'del', ns]);
  }
}

/** A network namespace of one test file's own. */
export interface Namespace {
  /** nn-NAME-PID: this process's own, so files and runs at once never share one. */
  readonly name: string;
  /** Runs `argv` inside the namespace and returns what it printed. */
  exec(...argv: string[]): string;
  /** The executor the driver under test gets: every command runs inside the namespace. */
  readonly executor: ProcessExecutor;
}

/**
 * A namespace for the calling describe block: made, loopback up, before its first test;
 * after its last one (also when a test failed halfway) the executor is closed and the
 * namespace deleted with everything in it. The block's own afterAll hooks, registered
 * after this call, run before that (vitest runs after-hooks last-registered first).
 */
export function useNamespace(name: string): Namespace {
  const ns = `nn-${name}-${process.pid}`;
  const exec = (...argv: string[]): string => execFileSync('ip', ['netns', 'exec', ns, ...argv], { encoding: 'utf8' });
  const executor = processExecutor({ rootHelper: ['ip', 'netns', 'exec', ns], defaultTimeoutMs: 10_000 });
  beforeAll(() => {
    execFileSync('ip', ['netns', 'add', ns]);
    exec('ip', 'link', 'set', 'lo', 'up');
  });
  afterAll(() => {
    executor.close();
    deleteNamespace(ns);
  });
  return { name: ns, exec, executor };
}
