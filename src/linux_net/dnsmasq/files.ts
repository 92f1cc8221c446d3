import { readFileSync, renameSync, writeFileSync } from 'node:fs';

/**
 * Writes that dnsmasq may read at any moment (by inotify, or at a SIGHUP): never half
 * a file, and no write at all when the text is already there.
 */

/** Atomic write (rename), skipped when the text is unchanged; returns whether it wrote. */
export function writeIfChanged(path: string, text: string): boolean {
  if (readText(path) === text) return false;
  writeAtomically(path, text);
  return true;
}

/** Written beside, then renamed: a reader never sees half a file (dnsmasq skips dotfiles in its hostsdir). */
export function writeAtomically(path: string, text: string): void {
  const slash = path.lastIndexOf('/');
  const temporary = `${path.slice(0, slash + 1)}.${path.slice(slash + 1)}.tmp`;
  writeFileSync(temporary, text, { mode: 0o644 });
  renameSync(temporary, path);
}

/** The file's text, or undefined when it cannot be read (missing: nothing was written yet). */
export function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}
