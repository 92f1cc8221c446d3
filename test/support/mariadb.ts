/**
 * The MariaDB server of a test run. Starting and stopping servers and carving
 * databases out of them lives in tools/mariadb.ts (shared with bench/); this file
 * adds how tests find the server that the vitest globalSetup (test/support/globalSetup.ts)
 * started: mysqlServerUrl().
 */
import { inject } from 'vitest';

export * from '../../tools/mariadb.js';

/** Key under which global setup provides the server URL (see inject()). */
export const MYSQL_URL_KEY = 'novanetMysqlUrl';
/** Environment variable carrying the server URL (external or started). */
export const MYSQL_URL_ENV = 'NOVANET_TEST_MYSQL_URL';

declare module 'vitest' {
  export interface ProvidedContext {
    novanetMysqlUrl: string;
  }
}

/**
 * URL of the MariaDB server for this test run: NOVANET_TEST_MYSQL_URL if set
 * (by the user or by the global setup), else the value the global setup
 * provided through vitest's provide()/inject().
 */
export function mysqlServerUrl(): string {
  const fromEnv = process.env[MYSQL_URL_ENV];
  if (fromEnv) return fromEnv;
  let injected: string | undefined;
  try {
    injected = inject(MYSQL_URL_KEY);
  } catch {
    injected = undefined;
  }
  if (injected) return injected;
  throw new Error(
    `no MariaDB server for tests: set ${MYSQL_URL_ENV} or run through vitest with test/support/globalSetup.ts as globalSetup`,
  );
}
