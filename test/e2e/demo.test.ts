/** `make demo` runs node dist/tools/demo.js: it must pass, and clean up even when interrupted. */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, requireBuild, run } from '../../tools/lab.js';

const DEMO = `${REPO_ROOT}/dist/tools/demo.js`;

async function labsOf(pid: number): Promise<string[]> {
  const listed = await run(['ip', 'netns', 'list']);
  return listed.stdout
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter((name) => name.startsWith(`nnlab-${pid}x`));
}

describe('the demo', () => {
  it('runs green: every VM gets its API address by DHCP and reaches its peer and the outside', async () => {
    requireBuild();
    const result = await run([process.execPath, DEMO], { timeoutMs: 120_000 });
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toMatch(
      /^result: every VM got its API address by DHCP and reached its peer and the outside \(SNAT to 192\.0\.2\.10\)$/m,
    );
    expect(result.stdout).toMatch(/^lab removed$/m);
  }, 120_000);

  it('tears the lab down on Ctrl-C', async () => {
    const child = spawn(process.execPath, [DEMO], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        output += chunk;
        if (output.includes('novanet-network is up')) resolve();
      });
      child.on('exit', (code) => reject(new Error(`demo exited (${code}) early: ${output}`)));
    });
    expect(await labsOf(child.pid!)).not.toEqual([]);
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(await labsOf(child.pid!)).toEqual([]);
  }, 120_000);
});
