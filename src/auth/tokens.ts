import { createHash, randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Database } from '../db/connection.js';
import * as tokens from '../db/tokens.js';
import { Invalid, NotFound } from '../errors.js';
import { labelField, projectIdField, quote } from '../fields.js';

/** What a token lets its holder do: `admin` acts on any project, `member` on its own. */
export const ROLES = ['admin', 'member'] as const;
export type Role = (typeof ROLES)[number];

/** Who is calling, once a token has been verified. */
export interface Caller {
  projectId: string;
  role: Role;
  tokenId: number;
}

/** A token as listed: everything but the secret, which is never stored. */
export interface TokenInfo {
  id: number;
  projectId: string;
  role: Role;
  description: string | null;
  createdAt: Date | null;
  expiresAt: Date | null;
}

export interface CreatedToken {
  /** The secret: shown once, at creation; only its sha256 is kept. */
  token: string;
  info: TokenInfo;
}

export interface TokenServiceDeps {
  db: Database;
  now?: () => Date;
  /** Source of the secret's bytes (tests may make it predictable). */
  random?: (size: number) => Buffer;
  /**
   * How long a verified token is believed without asking the database again (0: every
   * request asks). A revocation then takes up to this long to reach the API, as with
   * keystonemiddleware's token_cache_time.
   */
  cacheSeconds?: number;
  /** A monotonic clock in ms for the cache (a wall clock stepped back would lengthen it). */
  monotonicMs?: () => number;
}

/** Verified tokens remembered at most; a full cache forgets its oldest entry. */
const CACHED_TOKENS = 10_000;

/** 32 random bytes: 256 bits, as url-safe base64 (43 characters, safe in a header). */
const TOKEN_BYTES = 32;
/** Longer header values are refused before hashing; real tokens are 43 characters. */
const MAX_TOKEN_LENGTH = 256;

/** The stored form of a token. A plain hash suffices: the secret has 256 bits of entropy. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function roleField(value: string, field = 'role'): Role {
  const role = ROLES.find((candidate) => candidate === value);
  if (role === undefined) throw new Invalid(`${field} must be ${ROLES.join(' or ')}, got ${quote(value)}`);
  return role;
}

function info(token: tokens.ApiToken): TokenInfo {
  return {
    id: token.id,
    projectId: token.projectId,
    // A role this release does not know (written by hand) grants nothing beyond member.
    role: token.role === 'admin' ? 'admin' : 'member',
    description: token.description,
    createdAt: token.createdAt,
    expiresAt: token.expiresAt,
  };
}

/**
 * API tokens: created by operators (`novanet-manage token create`), checked on every
 * API request. The secret is returned once and stored only as its sha256, so a copy
 * of the database does not let anyone call the API.
 */
export class TokenService {
  private readonly db: Database;
  private readonly now: () => Date;
  private readonly random: (size: number) => Buffer;
  private readonly cacheMs: number;
  private readonly monotonicMs: () => number;
  /** By token hash: the caller, the token's own expiry, and until when (monotonic ms) this entry holds. */
  private readonly cache = new Map<string, { caller: Caller; expiresAt: Date | null; until: number }>();

  constructor(deps: TokenServiceDeps) {
    this.db = deps.db;
    this.now = deps.now ?? (() => new Date());
    this.random = deps.random ?? randomBytes;
    this.cacheMs = (deps.cacheSeconds ?? 0) * 1000;
    this.monotonicMs = deps.monotonicMs ?? (() => performance.now());
  }

  /** A new token for `projectId`; the returned secret is the only copy. */
  async create(
    projectId: string,
    role: string = 'member',
    description?: string,
    options: { expiresAt?: Date } = {},
  ): Promise<CreatedToken> {
    const project = projectIdField(projectId);
    const checkedRole = roleField(role);
    const text = description === undefined ? null : labelField(description, 'description');
    const now = this.now();
    if (options.expiresAt !== undefined && options.expiresAt.getTime() <= now.getTime()) {
      throw new Invalid('expires_at must be in the future');
    }
    const token = this.random(TOKEN_BYTES).toString('base64url');
    const row: tokens.NewApiToken = {
      tokenHash: hashToken(token),
      projectId: project,
      role: checkedRole,
      description: text,
      expiresAt: options.expiresAt ?? null,
    };
    const id = await tokens.insertToken(this.db.knex, row, now);
    return { token, info: info({ ...row, id, createdAt: now, updatedAt: now }) };
  }

  /**
   * The caller a token stands for, or undefined for an unknown, revoked or expired
   * one. The lookup is by hash, so timing reveals nothing about stored tokens.
   */
  async verify(token: string): Promise<Caller | undefined> {
    if (token.length === 0 || token.length > MAX_TOKEN_LENGTH) return undefined;
    const hash = hashToken(token);
    const now = this.now().getTime();
    const cached = this.cache.get(hash);
    if (cached && cached.until > this.monotonicMs())
      return cached.expiresAt !== null && cached.expiresAt.getTime() <= now ? undefined : cached.caller;
    this.cache.delete(hash);
    const found = await tokens.findTokenByHash(this.db.knex, hash);
    // Only valid tokens are remembered: unknown ones cannot fill the cache.
    if (!found) return undefined;
    if (found.expiresAt !== null && found.expiresAt.getTime() <= now) return undefined;
    const { projectId, role } = info(found);
    const caller = { projectId, role, tokenId: found.id };
    if (this.cacheMs > 0) {
      if (this.cache.size >= CACHED_TOKENS) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(hash, { caller, expiresAt: found.expiresAt, until: this.monotonicMs() + this.cacheMs });
    }
    return caller;
  }

  async list(filter: { projectId?: string } = {}): Promise<TokenInfo[]> {
    if (filter.projectId !== undefined) projectIdField(filter.projectId, 'project_id');
    return (await tokens.listTokens(this.db.knex, filter)).map(info);
  }

  /** Revokes by id, or by the secret itself (for a leaked token whose id is not at hand). */
  async revoke(which: { id: number } | { token: string }): Promise<TokenInfo> {
    const found =
      'id' in which ? await tokens.findToken(this.db.knex, which.id) : await tokens.findTokenByHash(this.db.knex, hashToken(which.token));
    const name = 'id' in which ? `token ${which.id}` : 'that token';
    if (!found || !(await tokens.deleteToken(this.db.knex, found.id))) throw new NotFound(`${name} not found`);
    return info(found);
  }
}
