/**
 * A minimal Keystone v3 for driving novanet with the stock `openstack` CLI: version
 * discovery (GET / and GET /v3, as keystoneauth1 asks) and password authentication
 * (POST /v3/auth/tokens). The token it hands out is a real novanet API token
 * (TokenService), and the catalog has a `compute` service pointing at novanet,
 * so OSC takes its nova-network (compute) code paths: with no `network` service it
 * never looks for Neutron. An `image` service is listed too, here with its version
 * discovery only, because `server show` makes an image client before it looks at the
 * server (novanet's servers name no image, so no image is ever asked for).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Role, TokenService } from '../../src/auth/tokens.js';

export interface KeystoneUser {
  name: string;
  password: string;
  /** The project the user may scope to; its name and id are the same here. */
  project: string;
  role: Role;
}

export interface KeystoneOptions {
  tokens: Pick<TokenService, 'create'>;
  /** The compute endpoint of the catalog, e.g. `http://127.0.0.1:PORT/v2.1`. */
  computeUrl: string;
  users: KeystoneUser[];
}

export interface Keystone {
  /** `http://127.0.0.1:PORT/v3`: what OS_AUTH_URL should be. */
  authUrl: string;
  /** Token requests seen, by user name, for assertions. */
  issued: string[];
  close(): Promise<void>;
}

const DOMAIN = { id: 'default', name: 'Default' };
const TOKEN_LIFETIME_MS = 60 * 60 * 1000;

function send(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'Content-Type': 'application/json', ...headers });
  response.end(JSON.stringify(body));
}

function refuse(response: ServerResponse, status: number, title: string, message: string): void {
  send(response, status, { error: { code: status, title, message } });
}

async function readBody(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/** What keystoneauth1 reads from a password request; anything else is refused. */
interface PasswordAuth {
  user: string;
  password: string;
  project: string | undefined;
}

function passwordAuth(body: unknown): PasswordAuth | undefined {
  const auth = (
    body as
      | {
          auth?: {
            identity?: { methods?: unknown; password?: { user?: { name?: unknown; password?: unknown } } };
            scope?: { project?: { name?: unknown } };
          };
        }
      | undefined
  )?.auth;
  const user = auth?.identity?.password?.user;
  if (!Array.isArray(auth?.identity?.methods) || !auth.identity.methods.includes('password')) return undefined;
  if (typeof user?.name !== 'string' || typeof user.password !== 'string') return undefined;
  const project = auth.scope?.project?.name;
  return { user: user.name, password: user.password, project: typeof project === 'string' ? project : undefined };
}

/** Starts the fake Keystone on 127.0.0.1 with a free port. */
export async function startKeystone(options: KeystoneOptions): Promise<Keystone> {
  const issued: string[] = [];
  let base = '';

  const version = () => ({
    id: 'v3.14',
    status: 'stable',
    updated: '2020-04-07T00:00:00Z',
    links: [{ rel: 'self', href: `${base}/v3/` }],
    'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.identity-v3+json' }],
  });

  async function token(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const auth = passwordAuth(await readBody(request));
    if (!auth) return refuse(response, 400, 'Bad Request', 'only password authentication with a user name is supported');
    const user = options.users.find((candidate) => candidate.name === auth.user && candidate.password === auth.password);
    if (!user) return refuse(response, 401, 'Unauthorized', 'The request you have made requires authentication.');
    if (auth.project !== undefined && auth.project !== user.project) {
      return refuse(response, 401, 'Unauthorized', `user ${user.name} has no role on project ${auth.project}`);
    }
    const issuedAt = new Date();
    const expiresAt = new Date(issuedAt.getTime() + TOKEN_LIFETIME_MS);
    const created = await options.tokens.create(user.project, user.role, `keystone test token for ${user.name}`, { expiresAt });
    issued.push(user.name);
    send(
      response,
      201,
      {
        token: {
          methods: ['password'],
          issued_at: issuedAt.toISOString(),
          expires_at: expiresAt.toISOString(),
          user: { id: user.name, name: user.name, domain: DOMAIN, password_expires_at: null },
          project: { id: user.project, name: user.project, domain: DOMAIN },
          roles: [{ id: user.role, name: user.role }],
          catalog: [
            {
              id: 'compute',
              type: 'compute',
              name: 'nova',
              endpoints: [
                { id: 'compute-public', interface: 'public', region: 'RegionOne', region_id: 'RegionOne', url: options.computeUrl },
              ],
            },
            {
              id: 'image',
              type: 'image',
              name: 'glance',
              endpoints: [
                {
                  id: 'image-public',
                  interface: 'public',
                  region: 'RegionOne',
                  region_id: 'RegionOne',
                  url: `${base}/image`,
                },
              ],
            },
          ],
        },
      },
      { 'X-Subject-Token': created.token },
    );
  }

  const server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0]!.replace(/\/+$/, '');
    if (request.method === 'GET' && path === '') return send(response, 300, { versions: { values: [version()] } });
    if (request.method === 'GET' && path === '/v3') return send(response, 200, { version: version() });
    if (request.method === 'GET' && path === '/image') {
      return send(response, 300, { versions: [{ id: 'v2.0', status: 'CURRENT', links: [{ rel: 'self', href: `${base}/image/v2/` }] }] });
    }
    if (request.method === 'POST' && path === '/v3/auth/tokens') {
      token(request, response).catch((error: unknown) => refuse(response, 500, 'Internal Server Error', String(error)));
      return;
    }
    refuse(response, 404, 'Not Found', `the fake Keystone does not serve ${request.method ?? ''} ${path}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    authUrl: `${base}/v3`,
    issued,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}
