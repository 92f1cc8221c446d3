import type { FloatingRule } from './state.js';

/**
 * What both backends keep from one apply to the next, so that a change costs the work
 * of what changed, not of everything installed.
 */

/** Whether two lists hold the same items in the same order (rules of a chain, their tags). */
export function sameList<T>(a: readonly T[], b: readonly T[]): boolean {
  return a.length === b.length && a.every((item, index) => item === b[index]);
}

/**
 * What a driver believes is installed, so that an apply compares with it instead of
 * reading the kernel. It is forgotten before each write and believed again only once
 * the write has succeeded: a failed write may have applied part of itself (or what we
 * believed may be why it failed), so the next apply reads the kernel again.
 */
export class Applied<T> {
  private current: T | undefined;

  /** What the last successful write left installed; undefined: read the kernel. */
  get(): T | undefined {
    return this.current;
  }

  forget(): void {
    this.current = undefined;
  }

  /** Runs `write` (none: nothing to write) and then believes `after` is installed. */
  async write(after: T, write: (() => Promise<unknown>) | undefined): Promise<void> {
    if (write) {
      this.current = undefined;
      await write();
    }
    this.current = after;
  }
}

/**
 * `make`, run once per rule object. FloatingBindings keeps a floating rule's object
 * while the rule is unchanged, so a rule's text is made when it first comes, not again
 * at every apply of a list of thousands.
 */
export function perRule<T>(make: (rule: FloatingRule) => T): (rule: FloatingRule) => T {
  const made = new WeakMap<FloatingRule, T>();
  return (rule) => {
    let value = made.get(rule);
    if (value === undefined) made.set(rule, (value = make(rule)));
    return value;
  };
}
