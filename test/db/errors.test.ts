/** How database errors are told apart: retryable conflicts, outages, a missing schema, a duplicate key. */
import { describe, expect, it } from 'vitest';
import { isDatabaseOutage, isDuplicateKey, isMissingSchema, isRetryable } from '../../src/db/errors.js';

describe('isRetryable', () => {
  it('retries conflicts, including Galera certification failures (1213)', () => {
    expect(isRetryable({ code: 'ER_LOCK_DEADLOCK', errno: 1213 })).toBe(true);
    expect(isRetryable({ code: 'SQLITE_BUSY' })).toBe(true);
  });

  it('retries a lost or not-ready server, so the pool can move to another node', () => {
    for (const code of ['ECONNREFUSED', 'PROTOCOL_CONNECTION_LOST', 'ER_SERVER_SHUTDOWN', 'ER_UNKNOWN_COM_ERROR'])
      expect(isRetryable({ code }), code).toBe(true);
    expect(isRetryable({ errno: 1927 })).toBe(true);
  });

  it('does not retry anything else', () => {
    expect(isRetryable({ code: 'ER_DUP_ENTRY', errno: 1062 })).toBe(false);
    expect(isRetryable(new Error('boom'))).toBe(false);
    expect(isRetryable(null)).toBe(false);
  });
});

describe('isDatabaseOutage', () => {
  it('counts every way of not reaching the database, and nothing else', () => {
    for (const code of [
      'ECONNREFUSED',
      'ENOTFOUND',
      'ER_ACCESS_DENIED_ERROR',
      'ER_BAD_DB_ERROR',
      'ER_CON_COUNT_ERROR',
      'SQLITE_CANTOPEN',
      'SQLITE_BUSY',
    ]) {
      expect(isDatabaseOutage({ code }), code).toBe(true);
    }
    expect(isDatabaseOutage({ code: 'ENOENT', syscall: 'connect' })).toBe(true);
    expect(isDatabaseOutage({ name: 'KnexTimeoutError' })).toBe(true);
    // A missing file elsewhere is a bug to report, not an outage.
    expect(isDatabaseOutage({ code: 'ENOENT', syscall: 'open' })).toBe(false);
    expect(isDatabaseOutage({ code: 'ER_DUP_ENTRY' })).toBe(false);
    expect(isDatabaseOutage(new Error('boom'))).toBe(false);
    expect(isDatabaseOutage(undefined)).toBe(false);
  });

  it('tells a missing schema and a duplicate key apart from the rest', () => {
    expect(isMissingSchema({ code: 'ER_NO_SUCH_TABLE' })).toBe(true);
    expect(isMissingSchema(new Error('select * from `networks` - SQLITE_ERROR: no such table: networks'))).toBe(true);
    expect(isMissingSchema({ code: 'ECONNREFUSED' })).toBe(false);
    for (const code of ['ER_DUP_ENTRY', 'SQLITE_CONSTRAINT_UNIQUE', 'SQLITE_CONSTRAINT_PRIMARYKEY'])
      expect(isDuplicateKey({ code }), code).toBe(true);
    expect(isDuplicateKey({ code: 'SQLITE_CONSTRAINT_NOTNULL' })).toBe(false);
  });
});
