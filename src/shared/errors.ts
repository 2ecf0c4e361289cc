/** Stable error codes. Every protocol maps each of them in a total Record, so adding one forces a decision everywhere. */
export const ERROR_CODES = [
  'bad_request',
  'unauthenticated',
  'forbidden',
  'not_found',
  'conflict',
  'gone',
  'quota_exceeded',
  'storage_full',
  'too_large',
  'precondition_failed',
  'locked',
  'not_ready',
  'rate_limited',
  'checksum_mismatch',
  'unsupported',
  /** The gateway is shutting down (the database is closed): try again after its restart. */
  'unavailable',
  'internal',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export class GatewayError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'GatewayError';
  }
}

export function isGatewayError(err: unknown): err is GatewayError {
  return err instanceof GatewayError;
}

/** Maps low-level errors (fs, sqlite) to a GatewayError without leaking their text to clients. */
export function toGatewayError(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  const errno = (err as { code?: unknown } | null)?.code;
  if (errno === 'ENOSPC' || errno === 'EDQUOT' || errno === 'SQLITE_FULL') {
    return new GatewayError('storage_full', 'storage is full', { cause: err });
  }
  if (errno === 'ENOENT') return new GatewayError('not_found', 'not found', { cause: err });
  if (errno === 'ECONNRESET' || errno === 'EPIPE' || errno === 'ERR_STREAM_PREMATURE_CLOSE' || errno === 'ECONNABORTED') {
    return new GatewayError('bad_request', 'the client disconnected', { cause: err });
  }
  return new GatewayError('internal', 'internal error', { cause: err });
}
