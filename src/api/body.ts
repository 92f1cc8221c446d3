import { parse as parseContentType } from 'content-type';
import type { Context } from 'koa';
import { Invalid } from '../errors.js';
import { HttpFault } from './errors.js';

export const DEFAULT_MAX_BODY_BYTES = 65536;

/** Lists and objects inside each other at most: Nova's bodies need four; anything deeper is an attack or an accident. */
export const MAX_JSON_DEPTH = 32;

/** Nova's words for the two ways a body can be unreadable. */
const MALFORMED = 'Malformed request body';
const TOO_LARGE = 'Request is too large.';

function tooLarge(maxBytes: number): HttpFault {
  // The rest of the body is not read: close the connection instead of draining it.
  return new HttpFault(413, `${TOO_LARGE} (the limit is ${maxBytes} bytes)`, { Connection: 'close' });
}

/**
 * Reads a JSON request body of at most `maxBytes` bytes. A declared Content-Length
 * over the limit is refused before reading anything; a chunked body is refused as
 * soon as it passes the limit. A body must be JSON (`application/json`, or no
 * Content-Type at all); it must be valid UTF-8 and valid JSON. Returns undefined
 * when there is no body.
 */
export async function readJson(ctx: Context, maxBytes: number): Promise<unknown> {
  const declared = ctx.request.length;
  const chunked = ctx.get('Transfer-Encoding') !== '';
  if (!chunked && (declared === undefined || declared === 0)) return undefined;
  requireJsonType(ctx.get('Content-Type'));
  if (declared !== undefined && declared > maxBytes) throw tooLarge(maxBytes);

  const bytes = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const request = ctx.req;
    const cleanup = () => {
      request.off('data', onData);
      request.off('end', onEnd);
      request.off('error', onError);
      request.off('aborted', onAborted);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        // Listeners go: whatever else arrives is discarded by Node.
        cleanup();
        reject(tooLarge(maxBytes));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    const onAborted = () => {
      cleanup();
      reject(new Invalid('the request body was cut off'));
    };
    request.on('data', onData);
    request.on('end', onEnd);
    request.on('error', onError);
    request.on('aborted', onAborted);
  });
  if (bytes.length === 0) return undefined;

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new Invalid(`${MALFORMED}: not valid UTF-8`);
  }
  // Before parsing: code that walks a value (validation messages, logs) must never meet one
  // deep enough to overflow the stack.
  if (nestingDepth(text) > MAX_JSON_DEPTH) throw new Invalid(`${MALFORMED}: lists and objects nested more than ${MAX_JSON_DEPTH} deep`);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new Invalid(MALFORMED);
  }
}

/**
 * A body is JSON: no Content-Type, or application/json (or a `+json` type) in UTF-8.
 * The header is parsed strictly, so a malformed one (`;;;`) is refused rather than
 * taken as none.
 */
function requireJsonType(header: string): void {
  if (header === '') return;
  const shown = JSON.stringify(header.slice(0, 60));
  let type: string;
  let charset: string | undefined;
  try {
    const parsed = parseContentType(header);
    type = parsed.type;
    charset = parsed.parameters.charset?.toLowerCase();
  } catch {
    throw new HttpFault(415, `Malformed Content-Type ${shown}: request bodies must be application/json`);
  }
  if (type !== 'application/json' && !/^application\/[a-z0-9.+-]*\+json$/.test(type)) {
    throw new HttpFault(415, `Unsupported Content-Type ${shown}: request bodies must be application/json`);
  }
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    throw new HttpFault(415, `Unsupported charset in Content-Type ${shown}: JSON is UTF-8`);
  }
}

/** How deep lists and objects nest in JSON text (brackets inside strings do not count); a scan, not a recursion. */
export function nestingDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let index = 0; index < text.length; index++) {
    const char = text.charCodeAt(index);
    if (inString) {
      // A backslash escapes the next character.
      if (char === 0x5c) index++;
      else if (char === 0x22) inString = false;
    } else if (char === 0x22) {
      inString = true;
    } else if (char === 0x5b || char === 0x7b) {
      depth++;
      if (depth > deepest) deepest = depth;
    } else if (char === 0x5d || char === 0x7d) {
      depth--;
    }
  }
  return deepest;
}

/** A body the route cannot do without. */
export async function requireJson(ctx: Context, maxBytes: number): Promise<unknown> {
  const body = await readJson(ctx, maxBytes);
  if (body === undefined) throw new Invalid('the request needs a JSON body');
  return body;
}
