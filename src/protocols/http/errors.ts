import type { Response } from 'express';
import { toGatewayError, type ErrorCode, type GatewayError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';

/** Total: a new ErrorCode does not compile until HTTP decides its status. */
export const HTTP_STATUS: Record<ErrorCode, number> = {
  bad_request: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  gone: 410,
  quota_exceeded: 413,
  too_large: 413,
  precondition_failed: 412,
  locked: 423,
  not_ready: 425,
  rate_limited: 429,
  checksum_mismatch: 422,
  storage_full: 507,
  unsupported: 501,
  unavailable: 503,
  internal: 500,
};

/** Internal errors are logged once with their cause and shown to the client only as their code. */
export function describe(err: unknown, log: Logger, context: Record<string, unknown> = {}): GatewayError {
  const g = toGatewayError(err);
  if (g.code === 'internal' || g.code === 'storage_full') log.error({ err: g.cause ?? g, ...context }, g.message);
  return g;
}

export function sendError(res: Response, err: unknown, log: Logger, status?: number): void {
  const g = describe(err, log, { url: res.req.originalUrl, method: res.req.method });
  if (res.headersSent) {
    // Too late for a status: cut the connection so the client cannot mistake a partial body for a whole one.
    res.destroy();
    return;
  }
  const code = status ?? HTTP_STATUS[g.code];
  if (g.code === 'rate_limited') res.setHeader('Retry-After', '60');
  res.status(code).json({ error: { code: g.code, message: g.code === 'internal' ? 'internal error' : g.message } });
}
