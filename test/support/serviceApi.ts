import { expect } from 'vitest';

/**
 * A call to a running novanet-network's Nova API (`/v2.1` + path) with a token and an
 * optional JSON body, expecting `status` (200 unless given); the parsed body, if any.
 */
export async function callService<T>(base: string, token: string, method: string, path: string, body?: unknown, status = 200): Promise<T> {
  const response = await fetch(`${base}/v2.1${path}`, {
    method,
    headers: { 'X-Auth-Token': token, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  expect(response.status, `${method} ${path}: ${text}`).toBe(status);
  return (text === '' ? undefined : JSON.parse(text)) as T;
}
