/** The TokenService behind X-Auth-Token: create, verify, list, revoke, on each backend. */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { hashToken, TokenService } from '../../src/auth/tokens.js';
import { Invalid, NotFound } from '../../src/errors.js';
import { BACKENDS } from '../support/databases.js';
import { Clock, expectRefused, useDatabase } from '../support/managers.js';

describe.each(BACKENDS)('API tokens on %s', (backend) => {
  const db = useDatabase(backend);

  it('creates a 256-bit url-safe token, stores only its sha256, and verifies it', async () => {
    const clock = new Clock();
    const service = new TokenService({ db: db(), now: clock.now });
    const created = await service.create('p1', 'admin', 'compute hosts');
    expect(created.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(created.info).toMatchObject({ projectId: 'p1', role: 'admin', description: 'compute hosts', expiresAt: null });
    const rows = (await db().knex('api_tokens').select('*')) as Record<string, unknown>[];
    expect(rows).toHaveLength(1);
    expect(rows[0]!.token_hash).toBe(createHash('sha256').update(created.token).digest('hex'));
    expect(JSON.stringify(rows)).not.toContain(created.token);
    expect(await service.verify(created.token)).toEqual({ projectId: 'p1', role: 'admin', tokenId: created.info.id });
    expect(await service.verify(`${created.token}x`)).toBeUndefined();
    expect(await service.verify('')).toBeUndefined();
    expect(await service.verify('y'.repeat(10_000))).toBeUndefined();
  });

  it('makes a different token every time; the default role is member', async () => {
    const service = new TokenService({ db: db() });
    const a = await service.create('p1');
    const b = await service.create('p1');
    expect(a.token).not.toBe(b.token);
    expect(a.info.role).toBe('member');
    expect(hashToken(a.token)).not.toBe(hashToken(b.token));
  });

  it('refuses an expired token', async () => {
    const clock = new Clock();
    const service = new TokenService({ db: db(), now: clock.now });
    const created = await service.create('p1', 'member', undefined, { expiresAt: new Date(clock.now().getTime() + 3600_000) });
    expect(await service.verify(created.token)).toMatchObject({ projectId: 'p1' });
    clock.advance(3600);
    expect(await service.verify(created.token)).toBeUndefined();
  });

  it('with a cache, believes a verified token for cacheSeconds only, and never past its expiry', async () => {
    const clock = new Clock();
    const service = new TokenService({ db: db(), now: clock.now, cacheSeconds: 5, monotonicMs: () => clock.now().getTime() });
    const kept = await service.create('p1', 'member', undefined, { expiresAt: new Date(clock.now().getTime() + 7_000) });
    const revoked = await service.create('p2', 'admin');
    expect(await service.verify(kept.token)).toMatchObject({ projectId: 'p1' });
    expect(await service.verify(revoked.token)).toMatchObject({ projectId: 'p2', role: 'admin' });
    // Revoked from another process (the CLI): this one learns at the end of the entry.
    await db().knex('api_tokens').where('id', revoked.info.id).delete();
    clock.advance(4);
    expect(await service.verify(revoked.token)).toMatchObject({ projectId: 'p2' });
    clock.advance(1);
    expect(await service.verify(revoked.token)).toBeUndefined();
    expect(await service.verify(kept.token)).toMatchObject({ projectId: 'p1' });
    // Cached at 5 s until 10 s, but the token itself expires at 7 s.
    clock.advance(2);
    expect(await service.verify(kept.token)).toBeUndefined();
  });

  it('validates project, role, description and expiry; nothing is stored on refusal', async () => {
    const service = new TokenService({ db: db() });
    await expectRefused(db(), () => service.create('bad project'), Invalid, /^project_id must be 1-255 letters/);
    await expectRefused(db(), () => service.create('p1', 'root'), Invalid, /^role must be admin or member, got "root"$/);
    await expectRefused(
      db(),
      () => service.create('p1', 'member', 'two\nlines'),
      Invalid,
      /description must not contain control characters/,
    );
    await expectRefused(
      db(),
      () => service.create('p1', 'member', undefined, { expiresAt: new Date(0) }),
      Invalid,
      /expires_at must be in the future/,
    );
  });

  it('lists tokens without secrets and revokes by id or by the token itself', async () => {
    const service = new TokenService({ db: db() });
    const a = await service.create('p1', 'member', 'a');
    const b = await service.create('p2', 'admin');
    expect((await service.list()).map((token) => [token.id, token.projectId, token.role, token.description])).toEqual([
      [a.info.id, 'p1', 'member', 'a'],
      [b.info.id, 'p2', 'admin', null],
    ]);
    expect(await service.list({ projectId: 'p2' })).toHaveLength(1);
    expect(JSON.stringify(await service.list())).not.toContain(a.token);
    expect((await service.revoke({ id: a.info.id })).projectId).toBe('p1');
    expect(await service.verify(a.token)).toBeUndefined();
    expect((await service.revoke({ token: b.token })).id).toBe(b.info.id);
    expect(await service.list()).toEqual([]);
    await expectRefused(db(), () => service.revoke({ id: a.info.id }), NotFound, new RegExp(`token ${a.info.id} not found`));
    await expectRefused(db(), () => service.revoke({ token: 'nope' }), NotFound, /that token not found/);
  });

  it('treats a role it does not know (a hand-edited row) as member', async () => {
    const service = new TokenService({ db: db() });
    const created = await service.create('p1', 'admin');
    await db().knex('api_tokens').where('id', created.info.id).update({ role: 'superuser' });
    expect(await service.verify(created.token)).toMatchObject({ role: 'member' });
  });
});
