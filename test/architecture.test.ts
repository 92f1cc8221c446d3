import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The shape DESIGN.md gives src/: data flows one way (CLI / API → managers → host →
 * linux_net → kernel), every folder owns one thing, and no module reaches back up
 * through a circle of imports. Type-only imports count: they tie modules together
 * as much as the others.
 */

const ROOT = resolve(import.meta.dirname, '..');
const SRC = join(ROOT, 'src');

/** Every .ts file under `dir`, relative to the project root. */
function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') ? [relative(ROOT, path)] : [];
  });
}

/** The relative modules a file imports or re-exports, as project paths (.js resolved to .ts). */
function importsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const found = new Set<string>();
  for (const match of text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+'(\.{1,2}\/[^']+)'/gms)) {
    found.add(relative(ROOT, resolve(ROOT, dirname(file), match[1]!)).replace(/\.js$/, '.ts'));
  }
  return [...found];
}

/** The graph of src/ (edges into other folders, such as migrations/, are kept for the layer rules). */
function graph(): Map<string, string[]> {
  return new Map(sources(SRC).map((file) => [file, importsOf(file)]));
}

/** Strongly connected components of more than one module, or of one that imports itself: the circles. */
function circles(edges: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  let next = 0;
  const visit = (node: string): void => {
    index.set(node, next);
    low.set(node, next);
    next++;
    stack.push(node);
    onStack.add(node);
    for (const target of edges.get(node) ?? []) {
      if (!edges.has(target)) continue;
      if (!index.has(target)) {
        visit(target);
        low.set(node, Math.min(low.get(node)!, low.get(target)!));
      } else if (onStack.has(target)) {
        low.set(node, Math.min(low.get(node)!, index.get(target)!));
      }
    }
    if (low.get(node) !== index.get(node)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== node);
    if (component.length > 1 || (edges.get(node) ?? []).includes(node)) found.push(component.sort());
  };
  for (const node of edges.keys()) if (!index.has(node)) visit(node);
  return found;
}

/** The part of src/ a file belongs to: its top folder, or the file itself at the top. */
function partOf(file: string): string {
  const parts = relative(SRC, join(ROOT, file)).split('/');
  if (parts[0]!.startsWith('..')) return file.split('/')[0]!;
  return parts.length === 1 ? parts[0]!.replace(/\.ts$/, '') : parts[0]!;
}

/**
 * What each part may import besides itself. The ground floor (errors, fields, log,
 * version) serves everyone; linux_net knows nothing of config or the database (its callers
 * pass it plain values); managers reach the host layer only through its contract.
 */
const ALLOWED: Record<string, string[]> = {
  errors: [],
  fields: ['errors'],
  log: [],
  version: [],
  ipam: ['errors', 'fields'],
  config: ['errors', 'fields', 'ipam'],
  db: ['errors', 'fields', 'ipam', 'migrations'],
  linux_net: ['errors', 'fields', 'ipam'],
  host: ['errors', 'fields', 'log', 'ipam', 'config', 'db', 'linux_net'],
  auth: ['errors', 'fields', 'ipam', 'db'],
  managers: ['errors', 'fields', 'ipam', 'config', 'db', 'host'],
  api: ['errors', 'fields', 'ipam', 'config', 'db', 'auth', 'managers', 'host'],
  cli: ['errors', 'fields', 'log', 'version', 'ipam', 'config', 'db', 'auth', 'managers', 'host', 'linux_net', 'api'],
};

/** The only modules of the host layer that the managers may import: what they tell it. */
const HOST_CONTRACT = ['src/host/layer.ts'];

describe('the shape of src/', () => {
  const edges = graph();

  it('has no import circle', () => {
    expect(circles(edges)).toEqual([]);
  });

  it('finds a circle when there is one (the check itself)', () => {
    const made = new Map([
      ['a.ts', ['b.ts']],
      ['b.ts', ['c.ts']],
      ['c.ts', ['a.ts']],
      ['d.ts', ['a.ts']],
      ['e.ts', ['e.ts']],
    ]);
    expect(circles(made)).toEqual([['a.ts', 'b.ts', 'c.ts'], ['e.ts']]);
  });

  it('has every part import only the parts below it', () => {
    const wrong: string[] = [];
    for (const [file, targets] of edges) {
      const from = partOf(file);
      const allowed = ALLOWED[from];
      if (!allowed) {
        wrong.push(`${file}: part ${from} has no place in the layers (add it to ALLOWED)`);
        continue;
      }
      for (const target of targets) {
        const to = partOf(target);
        if (to === from) continue;
        if (!allowed.includes(to)) wrong.push(`${file} imports ${target}`);
        else if (from === 'managers' && to === 'host' && !HOST_CONTRACT.includes(target))
          wrong.push(`${file} imports ${target} (managers see only the host layer's contract)`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('keeps every source file under 400 lines', () => {
    const long = [...edges.keys()]
      .map((file) => ({ file, lines: readFileSync(join(ROOT, file), 'utf8').split('\n').length - 1 }))
      .filter(({ lines }) => lines > 400)
      .map(({ file, lines }) => `${file} (${lines})`);
    expect(long).toEqual([]);
  });
});
