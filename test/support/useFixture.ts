import { afterAll, beforeAll } from 'vitest';

/** Something a test builds and must take down again (a database, an API server). */
export interface Closable {
  close(): Promise<void>;
}

/** One fixture for the calling describe block: made before its first test, closed after its last. */
export function useFixture<T extends Closable>(make: () => Promise<T>): () => T {
  let made: T | undefined;
  beforeAll(async () => {
    made = await make();
  });
  afterAll(async () => {
    await made?.close();
  });
  return () => made!;
}

/** A fixture of its own for one test: made, used, and closed even when the test fails. */
export async function withFixture<T extends Closable, R>(make: () => Promise<T>, use: (fixture: T) => Promise<R>): Promise<R> {
  const made = await make();
  try {
    return await use(made);
  } finally {
    await made.close();
  }
}
