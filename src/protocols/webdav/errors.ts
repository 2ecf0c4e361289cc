import type { Request } from 'express';
import {
  BadRequestError, ForbiddenError, InsufficientStorageError, InternalServerError, LockedError, MethodNotImplementedError,
  PreconditionFailedError, ResourceNotFoundError, ResourceTreeNotCompleteError, UnauthorizedError, UnprocessableEntityError,
  type AuthResponse,
} from 'nephele';
import { isGatewayError, toGatewayError, type ErrorCode, type GatewayError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';

/**
 * A status nephele has no error class for, or one that must carry a DAV:error precondition
 * element (RFC 4918 §16), e.g. 403 propfind-finite-depth.
 */
export class DavStatusError extends Error {
  constructor(readonly status: number, message: string, readonly condition: string | null = null) {
    super(message);
    this.name = 'DavStatusError';
  }
}

interface Mapping {
  status: number;
  /** The nephele error to throw from adapter code, so nephele's own multistatus logic sees the right status. */
  toDav: (message: string) => Error;
}

const custom = (status: number) => (message: string) => new DavStatusError(status, message);

/** Total: a new ErrorCode does not compile until WebDAV decides its status. */
export const DAV_ERRORS: Record<ErrorCode, Mapping> = {
  bad_request: { status: 400, toDav: (m) => new BadRequestError(m) },
  unauthenticated: { status: 401, toDav: (m) => new UnauthorizedError(m) },
  forbidden: { status: 403, toDav: (m) => new ForbiddenError(m) },
  not_found: { status: 404, toDav: (m) => new ResourceNotFoundError(m) },
  conflict: { status: 409, toDav: (m) => new ResourceTreeNotCompleteError(m) },
  gone: { status: 410, toDav: custom(410) },
  // RFC 4918 §9.7.1: quota and full disks are 507 for WebDAV clients (Finder/Explorer say "disk full").
  quota_exceeded: { status: 507, toDav: (m) => new InsufficientStorageError(m) },
  storage_full: { status: 507, toDav: (m) => new InsufficientStorageError(m) },
  too_large: { status: 413, toDav: custom(413) },
  precondition_failed: { status: 412, toDav: (m) => new PreconditionFailedError(m) },
  locked: { status: 423, toDav: (m) => new LockedError(m) },
  not_ready: { status: 409, toDav: (m) => new ResourceTreeNotCompleteError(m) },
  rate_limited: { status: 429, toDav: custom(429) },
  checksum_mismatch: { status: 422, toDav: (m) => new UnprocessableEntityError(m) },
  unsupported: { status: 501, toDav: (m) => new MethodNotImplementedError(m) },
  unavailable: { status: 503, toDav: custom(503) },
  internal: { status: 500, toDav: (m) => new InternalServerError(m) },
};

/** Runs shared-layer code and rethrows its GatewayError as the matching nephele error. */
export async function dav<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw asDavError(err);
  }
}

/** fs and sqlite errors carry an errno-like code; toGatewayError knows what they mean. */
function isSystemError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return err instanceof Error && typeof code === 'string' && /^E[A-Z]+$|^SQLITE/.test(code);
}

/** GatewayError (and fs/sqlite errors) become nephele's error for the code; nephele's own errors pass through. */
export function asDavError(err: unknown): Error {
  if (!isGatewayError(err) && !isSystemError(err)) return err instanceof Error ? err : new Error(String(err));
  const g = toGatewayError(err);
  const e = DAV_ERRORS[g.code].toDav(g.code === 'internal' ? 'internal error' : g.message);
  (e as Error & { gateway?: GatewayError }).gateway = g;
  return e;
}

const REASONS: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 406: 'Not Acceptable',
  409: 'Conflict', 410: 'Gone', 412: 'Precondition Failed', 413: 'Content Too Large', 415: 'Unsupported Media Type',
  416: 'Range Not Satisfiable', 422: 'Unprocessable Content', 423: 'Locked', 424: 'Failed Dependency', 429: 'Too Many Requests',
  500: 'Internal Server Error', 501: 'Not Implemented', 502: 'Bad Gateway', 503: 'Service Unavailable', 507: 'Insufficient Storage',
};

export function statusOf(code: number, error: unknown): number {
  if (error instanceof DavStatusError) return error.status;
  if (isGatewayError(error)) return DAV_ERRORS[error.code].status;
  return code;
}

export function errorDocument(condition: string): string {
  return `<?xml version="1.0" encoding="utf-8"?>\n<D:error xmlns:D="DAV:"><D:${condition}/></D:error>\n`;
}

/**
 * Replaces nephele's default handler, which answers JSON with the stack trace and server paths.
 * Clients get a status and a short reason (or a DAV:error element); internal errors are logged once.
 */
export function davErrorHandler(log: Logger) {
  return async (code: number, message: string, request: Request, response: AuthResponse, error?: Error): Promise<void> => {
    const status = statusOf(code, error);
    if (status < 400) {
      if (!response.headersSent) {
        const e = error as { etag?: string; lastModified?: Date } | undefined;
        if (e?.etag) response.set('ETag', e.etag);
        if (e?.lastModified) response.set('Last-Modified', e.lastModified.toUTCString());
        response.status(status);
      }
      response.end();
      return;
    }
    const clientGone = request.destroyed || request.socket.destroyed;
    if (status >= 500 && !clientGone) log.error({ err: (error as { gateway?: GatewayError } | undefined)?.gateway?.cause ?? error, method: request.method, url: request.originalUrl }, 'webdav request failed');
    if (response.headersSent || response.destroyed) {
      // Too late for a status: cut the connection so a partial body is not taken for a whole one.
      response.destroy();
      return;
    }
    if (status === 429) response.set('Retry-After', '60');
    const condition = error instanceof DavStatusError ? error.condition : null;
    const body = condition ? errorDocument(condition) : `${status} ${REASONS[status] ?? 'Error'}\n`;
    response.status(status);
    response.set('Content-Type', condition ? 'application/xml; charset=utf-8' : 'text/plain; charset=utf-8');
    response.set('Content-Length', String(Buffer.byteLength(body)));
    response.end(request.method === 'HEAD' ? undefined : body);
  };
}
