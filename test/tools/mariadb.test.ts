/** The server the test run uses (tools/mariadb.ts, found through test/support/mariadb.ts) and the databases it carves out of it. */
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createTestDatabase, mysqlServerUrl, type TestDatabase } from '../support/mariadb.js';

describe('MariaDB test harness', () => {
  let db: TestDatabase;
  let conn: mysql.Connection;

  beforeAll(async () => {
    db = await createTestDatabase(mysqlServerUrl(), 'harness');
    conn = await mysql.createConnection({ uri: db.url });
  });

  afterAll(async () => {
    await conn?.end();
    await db?.drop();
  });

  test('provides a URL pointing at a fresh, uniquely named database', async () => {
    expect(mysqlServerUrl()).toMatch(/^mysql:\/\/[^:]+:[^@]+@[^:]+:\d+\//);
    expect(db.name).toMatch(/^harness_[a-z0-9_]+$/);
    expect(db.url.endsWith(`/${db.name}`)).toBe(true);
    const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT DATABASE() AS db');
    expect(rows[0]?.db).toBe(db.name);
  });

  test('is a real MariaDB server', async () => {
    const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT @@version AS version');
    expect(String(rows[0]?.version)).toContain('MariaDB');
  });

  test('round-trips a row through a table', async () => {
    await conn.query('CREATE TABLE networks (id INT AUTO_INCREMENT PRIMARY KEY, cidr VARCHAR(43) NOT NULL) ENGINE=InnoDB');
    const [res] = await conn.execute<mysql.ResultSetHeader>('INSERT INTO networks (cidr) VALUES (?)', ['10.0.0.0/24']);
    const [rows] = await conn.execute<mysql.RowDataPacket[]>('SELECT id, cidr FROM networks WHERE id = ?', [res.insertId]);
    expect(rows).toEqual([{ id: res.insertId, cidr: '10.0.0.0/24' }]);
  });

  test('drop() removes the database', async () => {
    const extra = await createTestDatabase(mysqlServerUrl(), 'harness-drop!');
    expect(extra.name).toMatch(/^harness_drop_[a-z0-9_]+$/);
    const [before] = await conn.query<mysql.RowDataPacket[]>('SHOW DATABASES LIKE ?', [extra.name]);
    expect(before).toHaveLength(1);
    await extra.drop();
    const [after] = await conn.query<mysql.RowDataPacket[]>('SHOW DATABASES LIKE ?', [extra.name]);
    expect(after).toHaveLength(0);
  });
});
