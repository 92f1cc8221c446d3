import type { Middleware, ParameterizedContext } from 'koa';
import type { Caller, TokenService } from '../auth/tokens.js';
import { Forbidden, Invalid } from '../errors.js';
import { HttpFault } from './errors.js';
import type { ApiState } from './types.js';

type StateContext = ParameterizedContext<ApiState>;

/**
 * Every route but /healthz and /metrics: the `X-Auth-Token` header must name a live
 * token. A member token may only use its own project_id in the URL; Nova answers a
 * mismatch with 400 (not 403), and so does novanet. An admin may name any project.
 */
export function authenticate(tokens: Pick<TokenService, 'verify'>): Middleware<ApiState> {
  return async (ctx, next) => {
    const token = ctx.get('X-Auth-Token').trim();
    if (token === '')
      throw new HttpFault(401, 'Authentication required: send an API token in the X-Auth-Token header (novanet-manage token create)');
    const caller = await tokens.verify(token);
    if (!caller) throw new HttpFault(401, 'The X-Auth-Token is not valid: unknown, revoked or expired');
    const inUrl = ctx.state.urlProjectId;
    if (inUrl !== undefined && inUrl !== caller.projectId && caller.role !== 'admin') {
      throw new Invalid(
        `Malformed request URL: URL's project_id '${inUrl.slice(0, 64)}' doesn't match Context's project_id '${caller.projectId}'`,
      );
    }
    ctx.state.auth = caller;
    await next();
  };
}

/** The verified caller; only routes behind `authenticate` call this. */
export function callerOf(ctx: StateContext): Caller {
  const caller = ctx.state.auth;
  if (!caller) throw new Error('route reached without authentication');
  return caller;
}

/** The project a request acts for: the URL's (an admin may name any), else the token's. */
export function projectOf(ctx: StateContext): string {
  return ctx.state.urlProjectId ?? callerOf(ctx).projectId;
}

export function isAdmin(ctx: StateContext): boolean {
  return callerOf(ctx).role === 'admin';
}

/** Admin-only operations; the message is Nova's policy refusal, naming Nova's rule. */
export function requireAdmin(ctx: StateContext, policy: string): Caller {
  const caller = callerOf(ctx);
  if (caller.role !== 'admin') throw new Forbidden(`Policy doesn't allow ${policy} to be performed.`);
  return caller;
}
