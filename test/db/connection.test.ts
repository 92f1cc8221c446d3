import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { openDatabase, parseConnectionUrl } from '../../src/db/connection.js';
import { Invalid } from '../../src/errors.js';
import { mysqlServerUrl } from '../support/mariadb.js';

type MysqlConnection = { host: string; port: number; user: string; password: string; database: string; socketPath?: string };

function mysqlConnection(url: string): MysqlConnection {
  const parsed = parseConnectionUrl(url);
  expect(parsed.dialect).toBe('mysql');
  expect(parsed.knexConfig.client).toBe('mysql2');
  return parsed.knexConfig.connection as MysqlConnection;
}

describe('parseConnectionUrl', () => {
  it('opens an absolute SQLite path from sqlite:///PATH', () => {
    const parsed = parseConnectionUrl('sqlite:///var/lib/novanet/novanet.sqlite');
    expect(parsed.dialect).toBe('sqlite');
    expect(parsed.knexConfig.client).toBe('better-sqlite3');
    expect(parsed.knexConfig.connection).toEqual({ filename: '/var/lib/novanet/novanet.sqlite' });
  });

  it('reads the default sqlite:///$state_path/... (four slashes after expansion) as one absolute path', () => {
    const parsed = parseConnectionUrl('sqlite:////var/lib/novanet/novanet.sqlite');
    expect((parsed.knexConfig.connection as { filename: string }).filename).toBe('/var/lib/novanet/novanet.sqlite');
  });

  it('accepts in-memory SQLite', () => {
    expect(parseConnectionUrl('sqlite://:memory:').knexConfig.connection).toEqual({ filename: ':memory:' });
    expect(parseConnectionUrl('sqlite:///:memory:').knexConfig.connection).toEqual({ filename: ':memory:' });
  });

  it('refuses a relative SQLite path', () => {
    expect(() => parseConnectionUrl('sqlite://novanet.sqlite')).toThrow(Invalid);
    expect(() => parseConnectionUrl('sqlite://data/novanet.sqlite')).toThrow(
      /\[database\] connection: SQLite path must be absolute \(sqlite:\/\/\/path\/to\/file\), got "sqlite:\/\/data\/novanet\.sqlite"/,
    );
  });

  it('reads mysql:// URLs', () => {
    expect(mysqlConnection('mysql://nova:secret@db.example:3307/nova')).toMatchObject({
      host: 'db.example',
      port: 3307,
      user: 'nova',
      password: 'secret',
      database: 'nova',
    });
  });

  it("reads nova's mysql+pymysql:// spelling, defaulting the port and decoding escapes", () => {
    const connection = mysqlConnection('mysql+pymysql://nova:p%40ss%2Fword@10.0.0.5/nova_db?charset=utf8');
    expect(connection).toMatchObject({ host: '10.0.0.5', port: 3306, user: 'nova', password: 'p@ss/word', database: 'nova_db' });
    expect(connection.socketPath).toBeUndefined();
  });

  it('accepts mariadb:// and a unix_socket parameter', () => {
    const connection = mysqlConnection('mariadb://root@localhost/novanet?unix_socket=/run/mysqld/mysqld.sock');
    expect(connection).toMatchObject({
      host: 'localhost',
      user: 'root',
      password: '',
      database: 'novanet',
      socketPath: '/run/mysqld/mysqld.sock',
    });
  });

  it('passes the pool size on', () => {
    expect((parseConnectionUrl('mysql://u:p@h/db', { maxPoolSize: 9 }).knexConfig.pool as { max: number }).max).toBe(9);
  });

  it('refuses a URL without a database name', () => {
    expect(() => parseConnectionUrl('mysql://nova:secret@db.example:3306/')).toThrow(Invalid);
    expect(() => parseConnectionUrl('mysql://nova:secret@db.example')).toThrow(/\[database\] connection names no database/);
  });

  it('refuses other schemes', () => {
    expect(() => parseConnectionUrl('postgresql://nova@db/nova')).toThrow(
      /\[database\] connection must start with sqlite:\/\/, mysql:\/\/ or mysql\+pymysql:\/\//,
    );
    expect(() => parseConnectionUrl('')).toThrow(Invalid);
  });

  it('refuses a malformed URL', () => {
    expect(() => parseConnectionUrl('mysql://nova:secret@db.example:notaport/nova')).toThrow(/is not a valid URL/);
  });
});

describe('parseConnectionUrl with a Galera host list', () => {
  it('keeps the hosts in the given order, the first one preferred', () => {
    const parsed = parseConnectionUrl('mysql://nova:s%40cret@10.0.0.2:3307,10.0.0.1,10.0.0.3:3309/nova');
    expect(parsed.hosts).toEqual([
      { host: '10.0.0.2', port: 3307 },
      { host: '10.0.0.1', port: 3306 },
      { host: '10.0.0.3', port: 3309 },
    ]);
  });

  it('opens each connection on the first host that answers, with the URL credentials', async () => {
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const dead = (closed.address() as net.AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const server = new URL(mysqlServerUrl());
    const db = openDatabase(`mysql://${server.username}:${server.password}@127.0.0.1:${dead},${server.host}${server.pathname}`);
    try {
      const [rows] = (await db.knex.raw('SELECT @@port AS port')) as [{ port: number }[]];
      expect(rows[0]!.port).toBe(Number(server.port));
    } finally {
      await db.close();
    }
  });

  it("keeps one host on knex's own mysql2 client, as before", () => {
    const parsed = parseConnectionUrl('mysql://nova:pw@db.example:3307/nova');
    expect(parsed.hosts).toEqual([{ host: 'db.example', port: 3307 }]);
    expect(parsed.knexConfig.client).toBe('mysql2');
  });

  it('refuses a bad host entry and a host list with unix_socket', () => {
    expect(() => parseConnectionUrl('mysql://nova@a:1,b:x/nova')).toThrow(/bad host "b:x"/);
    expect(() => parseConnectionUrl('mysql://nova@a:1,b:2/nova?unix_socket=/run/s')).toThrow(/exclude each other/);
  });
});
