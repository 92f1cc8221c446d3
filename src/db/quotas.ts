import type { Queryable } from './rows.js';

/** A project's own limit for `resource` (quotas table), or undefined for the default. */
export async function findQuota(q: Queryable, projectId: string, resource: string): Promise<number | undefined> {
  const row = (await q('quotas').where({ project_id: projectId, resource }).first('hard_limit')) as { hard_limit: number } | undefined;
  return row === undefined ? undefined : Number(row.hard_limit);
}
