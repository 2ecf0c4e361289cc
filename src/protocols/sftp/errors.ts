import { toGatewayError, type ErrorCode } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { STATUS, type StatusCode } from './codec.js';

/**
 * Total: a new ErrorCode does not compile until SFTP decides its status. SFTP v3 has only nine
 * codes, so quota, conflicts and the like are FAILURE with the gateway's message as the text.
 */
export const SFTP_STATUS: Record<ErrorCode, StatusCode> = {
  bad_request: STATUS.FAILURE,
  unauthenticated: STATUS.PERMISSION_DENIED,
  forbidden: STATUS.PERMISSION_DENIED,
  not_found: STATUS.NO_SUCH_FILE,
  conflict: STATUS.FAILURE,
  gone: STATUS.NO_SUCH_FILE,
  quota_exceeded: STATUS.FAILURE,
  storage_full: STATUS.FAILURE,
  too_large: STATUS.FAILURE,
  precondition_failed: STATUS.FAILURE,
  locked: STATUS.FAILURE,
  not_ready: STATUS.FAILURE,
  rate_limited: STATUS.PERMISSION_DENIED,
  checksum_mismatch: STATUS.FAILURE,
  unsupported: STATUS.OP_UNSUPPORTED,
  unavailable: STATUS.FAILURE,
  internal: STATUS.FAILURE,
};

/** Status and client-safe text for any thrown value; internal causes are logged once, never sent. */
export function statusOf(err: unknown, log: Logger, context: Record<string, unknown>): { code: StatusCode; message: string } {
  const g = toGatewayError(err);
  if (g.code === 'internal' || g.code === 'storage_full') log.error({ err: g.cause ?? g, ...context }, g.message);
  return { code: SFTP_STATUS[g.code], message: g.code === 'internal' ? 'internal error' : g.message };
}
