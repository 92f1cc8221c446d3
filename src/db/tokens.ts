import { type Queryable, toDate } from './rows.js';

/** An API token as stored: only the sha256 of the token itself is kept. */
export interface ApiToken {
  id: number;
  tokenHash: string;
  projectId: string;
  role: string;
  description: string | null;
  createdAt: Date | null;
  updatedAt: Date | null;
  expiresAt: Date | null;
}

export interface NewApiToken {
  tokenHash: string;
  projectId: string;
  role: string;
  description: string | null;
  expiresAt: Date | null;
}

type Row = Record<string, unknown>;

function fromRow(row: Row): ApiToken {
  return {
    id: Number(row.id),
    tokenHash: String(row.token_hash),
    projectId: String(row.project_id),
    role: String(row.role),
    description: (row.description as string | null) ?? null,
    createdAt: toDate(row.created_at),
    updatedAt: toDate(row.updated_at),
    expiresAt: toDate(row.expires_at),
  };
}

export async function insertToken(q: Queryable, token: NewApiToken, now: Date): Promise<number> {
  const [id] = await q('api_tokens').insert({
    token_hash: token.tokenHash,
    project_id: token.projectId,
    role: token.role,
    description: token.description,
    expires_at: token.expiresAt,
    created_at: now,
    updated_at: now,
  });
  return Number(id);
}

/** The token whose hash this is; the unique index makes this one indexed lookup. */
export async function findTokenByHash(q: Queryable, tokenHash: string): Promise<ApiToken | undefined> {
  const row = (await q('api_tokens').where('token_hash', tokenHash).first()) as Row | undefined;
  return row ? fromRow(row) : undefined;
}

export async function findToken(q: Queryable, id: number): Promise<ApiToken | undefined> {
  const row = (await q('api_tokens').where('id', id).first()) as Row | undefined;
  return row ? fromRow(row) : undefined;
}

export async function listTokens(q: Queryable, filter: { projectId?: string } = {}): Promise<ApiToken[]> {
  const query = q('api_tokens').orderBy('id');
  if (filter.projectId !== undefined) query.where('project_id', filter.projectId);
  return ((await query) as Row[]).map(fromRow);
}

/** Deletes a token for good; returns whether it existed. */
export async function deleteToken(q: Queryable, id: number): Promise<boolean> {
  return (await q('api_tokens').where('id', id).delete()) > 0;
}
