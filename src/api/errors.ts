import type { Middleware } from 'koa';
import { isDatabaseOutage } from '../db/errors.js';
import { type ErrorKind, isNovanetError } from '../errors.js';
import type { ApiLog } from './types.js';

/**
 * A failure of the HTTP exchange itself (no token, unknown route, body too large),
 * as opposed to the domain errors of src/errors.ts. Both become faults here.
 */
export class HttpFault extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpFault';
  }
}

/** Nova's fault names (nova/api/openstack/wsgi.py), so clients that read them keep working. */
const FAULT_NAMES: Record<number, string> = {
  400: 'badRequest',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'itemNotFound',
  405: 'badMethod',
  409: 'conflictingRequest',
  413: 'overLimit',
  415: 'badMediaType',
  501: 'notImplemented',
  503: 'serviceUnavailable',
};

/** Quota is 403 as in Nova's v2.1 API; `unavailable` is a retryable 503, never a 500. */
const STATUS_OF: Record<ErrorKind, number> = {
  invalid: 400,
  not_found: 404,
  conflict: 409,
  forbidden: 403,
  quota: 403,
  unavailable: 503,
};

/** Nova's text for anything unexpected: nothing about what went wrong leaks out. */
export const INTERNAL_MESSAGE = 'The server has either erred or is incapable of performing the requested operation.';

export interface Fault {
  status: number;
  body: Record<string, { code: number; message: string }>;
  headers: Record<string, string>;
}

export function faultBody(status: number, message: string): Fault['body'] {
  return { [FAULT_NAMES[status] ?? 'computeFault']: { code: status, message } };
}

/** An http-errors style error thrown by Koa or a library (e.g. a bad request line). */
function exposedHttpError(error: unknown): { status: number; message: string } | undefined {
  const candidate = error as { status?: unknown; expose?: unknown; message?: unknown } | null;
  if (typeof candidate?.status !== 'number' || candidate.expose !== true || candidate.status < 400 || candidate.status > 499)
    return undefined;
  return { status: candidate.status, message: String(candidate.message) };
}

/** What callers are told about an outage; the details go to the log only. */
export const OUTAGE_MESSAGE = 'The database is unreachable; try again later.';

/**
 * The one mapping from errors to responses. Undefined means the error is a bug or an
 * outage nobody anticipated: the caller logs it and answers the generic 500.
 */
export function toFault(error: unknown): Fault | undefined {
  if (error instanceof HttpFault) return { status: error.status, body: faultBody(error.status, error.message), headers: error.headers };
  if (isNovanetError(error)) {
    const status = STATUS_OF[error.kind];
    return { status, body: faultBody(status, error.message), headers: {} };
  }
  const http = exposedHttpError(error);
  if (http) return { status: http.status, body: faultBody(http.status, http.message), headers: {} };
  return undefined;
}

/**
 * Koa middleware: every error below it becomes a Nova fault body. Unknown errors are
 * logged with their stack and answered with Nova's generic 500; a database that
 * cannot be reached is a 503, as a retry may succeed.
 */
export function faults(log: ApiLog): Middleware {
  return async (ctx, next) => {
    try {
      await next();
    } catch (error) {
      const fault = toFault(error);
      if (fault) {
        ctx.status = fault.status;
        ctx.set(fault.headers);
        ctx.body = fault.body;
        return;
      }
      const outage = isDatabaseOutage(error);
      log(outage ? 'api.database_unreachable' : 'api.error', {
        method: ctx.method,
        path: ctx.originalUrl.split('?')[0],
        error: error instanceof Error ? error.message : String(error),
        stack: error instanceof Error ? error.stack : undefined,
      });
      ctx.status = outage ? 503 : 500;
      ctx.body = faultBody(ctx.status, outage ? OUTAGE_MESSAGE : INTERNAL_MESSAGE);
    }
  };
}
