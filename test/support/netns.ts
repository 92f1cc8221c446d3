import { execFileSync } from 'node:child_process';

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
