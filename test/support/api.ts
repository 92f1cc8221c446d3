/**
 * The API tests' harness: the real Koa app on an ephemeral HTTP server on 127.0.0.1,
 * a real manager on a real database (SQLite or MariaDB) with a recording host layer,
 * real tokens, and helpers to call it and check Nova's fault shape.
 */
import { request as httpRequest } from 'node:http';
import type Koa from 'koa';
import { expect } from 'vitest';
import { createApp, listen, type RunningApi } from '../../src/api/app.js';
import { createMetrics, type Metrics } from '../../src/api/metrics.js';
import type { ApiState, HealthReport } from '../../src/api/types.js';
import { type Role, TokenService } from '../../src/auth/tokens.js';
import type { Mode } from '../../src/config/options.js';
import type { Database } from '../../src/db/connection.js';
import type { NetworkManager } from '../../src/managers/manager.js';
import { type Harness, harness } from './managers.js';

export interface LogLine {
  event: string;
  fields: Record<string, unknown>;
}

export interface Reply {
  status: number;
  headers: Headers;
  text: string;
  /** The JSON body, or undefined when the body is empty or not JSON. */
  json: unknown;
}

export interface CallOptions {
  token?: string | undefined;
  /** Sent as JSON (Content-Type application/json). */
  body?: unknown;
  /** Sent as is, with `headers` deciding its Content-Type. */
  raw?: string | Buffer;
  headers?: Record<string, string>;
}

export interface Api {
  url: string;
  /** The Koa app itself, for what only it knows (the routes it registered). */
  app: Koa<ApiState>;
  h: Harness;
  manager: NetworkManager;
  tokens: TokenService;
  metrics: Metrics;
  logs: LogLine[];
  call(method: string, path: string, options?: CallOptions): Promise<Reply>;
  /** A fresh token of `project` with `role`. */
  token(project: string, role?: Role): Promise<string>;
  close(): Promise<void>;
}

export interface ApiOptions {
  mode?: Mode;
  /** Replaces the real manager (for the 500 test). */
  manager?: NetworkManager;
  maxBodyBytes?: number;
  health?: () => Promise<HealthReport> | HealthReport;
  config?: Record<string, string>;
}

export async function startApi(db: Database, options: ApiOptions = {}): Promise<Api> {
  const h = harness(db, options.mode ?? 'flatdhcp', { config: options.config ?? {} });
  const manager = options.manager ?? h.manager;
  const tokens = new TokenService({ db });
  const metrics = createMetrics({ processMetrics: false });
  const logs: LogLine[] = [];
  const app = createApp({
    manager,
    tokens,
    metrics,
    health: options.health ?? (() => ({ database: 'ok', reconcile: null })),
    log: (event, fields = {}) => logs.push({ event, fields }),
    ...(options.maxBodyBytes === undefined ? {} : { maxBodyBytes: options.maxBodyBytes }),
  });
  const running: RunningApi = await listen(app, { host: '127.0.0.1', port: 0 });
  return {
    url: running.url,
    app,
    h,
    manager,
    tokens,
    metrics,
    logs,
    async call(method, path, call = {}) {
      const headers: Record<string, string> = { ...call.headers };
      if (call.token !== undefined) headers['X-Auth-Token'] = call.token;
      let body: string | Buffer | undefined = call.raw;
      if (call.body !== undefined) {
        body = JSON.stringify(call.body);
        headers['Content-Type'] ??= 'application/json';
      }
      // fetch takes a Buffer at run time; its types want a Uint8Array view.
      const sent = typeof body === 'string' || body === undefined ? body : new Uint8Array(body);
      const response = await fetch(`${running.url}${path}`, { method, headers, ...(sent === undefined ? {} : { body: sent }) });
      const text = await response.text();
      let json: unknown;
      try {
        json = text === '' ? undefined : JSON.parse(text);
      } catch {
        json = undefined;
      }
      return { status: response.status, headers: response.headers, text, json };
    },
    async token(project, role = 'member') {
      return (await tokens.create(project, role)).token;
    },
    close: () => running.close(),
  };
}

const FAULT_NAMES: Record<number, string> = {
  400: 'badRequest',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'itemNotFound',
  405: 'badMethod',
  409: 'conflictingRequest',
  413: 'overLimit',
  415: 'badMediaType',
  500: 'computeFault',
  503: 'serviceUnavailable',
};

/** A Nova fault: the status, exactly one key named after it, code and message; no stack. */
export function expectFault(reply: Reply, status: number, message?: RegExp | string): string {
  expect({ status: reply.status, body: reply.json }, reply.text).toMatchObject({ status });
  const name = FAULT_NAMES[status]!;
  const body = reply.json as Record<string, { code: number; message: string }>;
  expect(Object.keys(body)).toEqual([name]);
  expect(Object.keys(body[name]!).sort()).toEqual(['code', 'message']);
  expect(body[name]!.code).toBe(status);
  const text = body[name]!.message;
  expect(typeof text).toBe('string');
  expect(text).not.toMatch(/\n\s+at /);
  if (typeof message === 'string') expect(text).toBe(message);
  else if (message) expect(text).toMatch(message);
  return text;
}

/**
 * A request by hand with node:http, for what fetch will not send: a chunked body
 * without Content-Length, a lying Content-Length.
 */
export function rawRequest(
  url: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  chunks: (string | Buffer)[],
): Promise<{ status: number; text: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(`${url}${path}`, { method, headers }, (response) => {
      let text = '';
      response.setEncoding('utf8').on('data', (chunk: string) => {
        text += chunk;
      });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, text, headers: response.headers }));
    });
    // The server may answer (413) and close before the body is fully sent.
    request.on('error', (error: NodeJS.ErrnoException) =>
      error.code === 'ECONNRESET' || error.code === 'EPIPE' ? undefined : reject(error),
    );
    for (const chunk of chunks) request.write(chunk);
    request.end();
  });
}

/**
 * Every route the app registered, as `METHOD /path` (HEAD, which koa-router adds to
 * each GET, left out): read from the routers' stacks, so a new route shows up here
 * without anyone listing it.
 */
export function registeredRoutes(app: Koa<ApiState>): string[] {
  const routes = new Set<string>();
  for (const middleware of app.middleware as (Koa.Middleware & { router?: { stack: { path: string | RegExp; methods: string[] }[] } })[]) {
    for (const layer of middleware.router?.stack ?? []) {
      for (const method of layer.methods) if (method !== 'HEAD') routes.add(`${method} ${String(layer.path)}`);
    }
  }
  return [...routes].sort();
}

/** Instance uuid number `n` (as the manager tests name them). */
export function uuidOf(n: number): string {
  return `00000000-0000-4000-8000-${n.toString().padStart(12, '0')}`;
}
