/**
 * vitest globalSetup: one MariaDB server for the whole test run.
 *
 * If NOVANET_TEST_MYSQL_URL is already set, that (external) server is used and
 * nothing is started.  Otherwise a private mariadbd is started (see
 * test/support/mariadb.ts) and its URL is published both as
 * process.env.NOVANET_TEST_MYSQL_URL (inherited by the worker processes, which
 * vitest spawns after global setup has run) and via provide() for inject().
 * Tests should call mysqlServerUrl() from test/support/mariadb.ts.
 */
import type { TestProject } from 'vitest/node';
import { type MariaDbServer, MYSQL_URL_ENV, MYSQL_URL_KEY, startMariaDb } from './mariadb.js';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const external = process.env[MYSQL_URL_ENV];
  if (external) {
    project.provide(MYSQL_URL_KEY, external);
    return async () => {};
  }

  const started = Date.now();
  const server: MariaDbServer = await startMariaDb({ name: 'vitest' });
  if (process.env.NOVANET_TEST_VERBOSE) {
    console.log(`[novanet test] MariaDB pid ${server.pid} on 127.0.0.1:${server.port} ready in ${Date.now() - started} ms`);
  }
  process.env[MYSQL_URL_ENV] = server.url;
  project.provide(MYSQL_URL_KEY, server.url);

  return async () => {
    delete process.env[MYSQL_URL_ENV];
    await server.stop();
  };
}
