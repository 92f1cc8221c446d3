import { existsSync, readFileSync } from 'node:fs';
import { Invalid } from '../errors.js';
import { type Config, OPTIONS, type OptionName, type OptionSpec } from './options.js';

export const DEFAULT_CONFIG_FILE = '/etc/novanet/novanet.conf';

export interface LoadOptions {
  /** `--config-file`; when absent, NOVANET_CONFIG_FILE, then the default path if it exists. */
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** Receives one line per unknown option. */
  warn?: (message: string) => void;
}

type Sections = Map<string, Map<string, string>>;

/**
 * Parses nova.conf-style INI: `[section]`, `key = value`, `#` and `;` comments, and
 * indented continuation lines (oslo.config's multi-line values).
 */
export function parseIni(source: string, file: string): Sections {
  const sections: Sections = new Map([['DEFAULT', new Map()]]);
  let current = sections.get('DEFAULT')!;
  let lastKey: string | undefined;
  source.split(/\r?\n/).forEach((line, index) => {
    const where = `${file}:${index + 1}`;
    if (/^\s*([#;].*)?$/.test(line)) return;
    if (/^\s/.test(line) && lastKey !== undefined) {
      current.set(lastKey, `${current.get(lastKey) ?? ''}\n${line.trim()}`);
      return;
    }
    const section = /^\[([^\]]+)\]\s*$/.exec(line);
    if (section) {
      const name = section[1]!.trim();
      current = sections.get(name) ?? new Map();
      sections.set(name, current);
      lastKey = undefined;
      return;
    }
    const pair = /^([A-Za-z0-9_.-]+)\s*[=:]\s*(.*)$/.exec(line);
    if (!pair) throw new Invalid(`${where}: expected "[section]" or "key = value", got ${JSON.stringify(line.slice(0, 60))}`);
    lastKey = pair[1]!;
    current.set(lastKey, stripQuotes(pair[2]!.trim()));
  });
  return sections;
}

function stripQuotes(value: string): string {
  const quoted = /^"(.*)"$|^'(.*)'$/.exec(value);
  return quoted ? (quoted[1] ?? quoted[2] ?? '') : value;
}

/** An option's name in the file: its own, or the `key` it is spelled as there. */
function keyOf(name: OptionName): string {
  return (OPTIONS[name] as OptionSpec).key ?? name;
}

export function envName(name: OptionName): string {
  const section = (OPTIONS[name] as OptionSpec).section;
  return `NOVANET_${section === 'DEFAULT' ? '' : `${section.toUpperCase()}_`}${keyOf(name).toUpperCase()}`;
}

/**
 * Loads the configuration once at start: file, then environment overrides
 * (`NOVANET_<OPTION>`, `NOVANET_<SECTION>_<OPTION>`), then `$option` interpolation
 * as oslo.config does it, then validation. Every error names the option.
 */
export function loadConfig(options: LoadOptions = {}): Config {
  const env = options.env ?? process.env;
  const warn = options.warn ?? ((message: string) => process.stderr.write(`warning: ${message}\n`));
  const explicit = options.file ?? env.NOVANET_CONFIG_FILE;
  const file = explicit ?? DEFAULT_CONFIG_FILE;
  let sections: Sections = new Map();
  if (explicit !== undefined || existsSync(file)) {
    let source: string;
    try {
      source = readFileSync(file, 'utf8');
    } catch (error) {
      throw new Invalid(`cannot read config file ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
    }
    sections = parseIni(source, file);
  }

  const raw = new Map<OptionName, string>();
  for (const [name, spec] of entries()) {
    // The environment overrides the file (containers and tests set single options this way).
    const value = env[envName(name)] ?? sections.get(spec.section)?.get(keyOf(name)) ?? spec.default;
    if (value !== undefined) raw.set(name, value);
  }
  const knownSections = new Set(entries().map(([, spec]) => spec.section));
  for (const [section, values] of sections) {
    // nova.conf carries other services' sections ([keystone_authtoken], ...): one line each.
    if (!knownSections.has(section as OptionSpec['section'])) {
      if (values.size > 0) warn(`section [${section}] of ${file} is not novanet's (ignored)`);
      continue;
    }
    for (const key of values.keys()) {
      const known = entries().some(([name, spec]) => spec.section === section && keyOf(name) === key);
      if (!known) warn(`unknown option [${section}] ${key} in ${file} (ignored)`);
    }
  }

  const config: Record<string, unknown> = {};
  for (const [name, spec] of entries()) {
    const value = raw.get(name);
    const label = spec.section === 'DEFAULT' ? name : `[${spec.section}] ${keyOf(name)}`;
    config[name] = value === undefined ? undefined : spec.parse(interpolate(value, raw, label), label);
  }
  return config as Config;
}

function entries(): [OptionName, OptionSpec][] {
  return Object.entries(OPTIONS) as [OptionName, OptionSpec][];
}

function interpolate(value: string, raw: Map<OptionName, string>, label: string, depth = 0): string {
  if (depth > 8) throw new Invalid(`${label}: $references nest too deeply (a loop?)`);
  // `$$` is a literal `$` (oslo.config's escape), e.g. in a database password.
  return value.replace(/\$\$|\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_match, name: string | undefined) => {
    if (name === undefined) return '$';
    const referenced = raw.get(name as OptionName);
    if (referenced === undefined) throw new Invalid(`${label} refers to unknown option $${name}`);
    return interpolate(referenced, raw, label, depth + 1);
  });
}
