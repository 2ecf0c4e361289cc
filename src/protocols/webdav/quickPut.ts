import type { NextFunction, Request, Response } from 'express';
import { catchErrors, type AuthResponse } from 'nephele';
import type { FileSession } from '../../cache/FileSession.js';
import type { Transfer } from '../../cache/transfers.js';
import { GatewayError } from '../../shared/errors.js';
import { canonicalPath } from '../../shared/paths.js';
import { authenticateRequest } from '../http/auth.js';
import { decodeUrlPath, encodeUrlPath } from '../http/paths.js';
import { authenticatedBefore } from './authenticator.js';
import { asDavError, davErrorHandler } from './errors.js';
import { eventIdOf, type DavDeps } from './router.js';
import { beginPut, writeBody } from './resource.js';

/**
 * Headers that make a PUT conditional, lock-bound, partial, compressed or property-setting. A PUT
 * with any of them goes to nephele's own handler, which implements them.
 */
const NEPHELE_HEADERS = ['if', 'if-match', 'if-none-match', 'if-modified-since', 'if-unmodified-since', 'if-range', 'content-range', 'content-encoding', 'content-language', 'lock-token'];

/** The event-relative path of a file URL below /dav/EVENT/, or null for anything else (folders, the root, bad escapes). */
function filePathOf(req: Request): { eventId: string; path: string } | null {
  if (req.path.endsWith('/')) return null;
  const [, , ...rest] = req.path.split('/');
  try {
    const path = canonicalPath(decodeUrlPath(rest.join('/')));
    return path === '' ? null : { eventId: eventIdOf(req), path };
  } catch {
    return null;
  }
}

let answered = 0;
/** PUTs answered here rather than by nephele (tests, diagnostics). */
export const quickPuts = (): number => answered;

/**
 * The everyday PUT (a writer, an existing parent folder, no lock anywhere in the event, none of
 * NEPHELE_HEADERS), answered in front of nephele: the same checks, the same write path (writeBody)
 * and the same answer (201 with Location, or 204), without nephele's per-request machinery (its
 * cookie parser, debug loggers, plugin resolution, resource lookups, lock walks and the errors it
 * throws for a new resource). On this machine that machinery was about a third of the main
 * thread's time per 4 KiB PUT (CPU profile, 2026-12-03). Anything else, including every refusal,
 * goes to nephele before a byte of the body is read; the authentication done here is handed on,
 * so a failed login counts once towards the lockout.
 */
export function quickPut(deps: DavDeps) {
  const onError = davErrorHandler(deps.log);
  return (req: Request, res: Response, next: NextFunction): void => {
    if (req.method !== 'PUT' || NEPHELE_HEADERS.some((h) => req.headers[h] !== undefined)) return next();
    const target = filePathOf(req);
    if (!target) return next();
    put(deps, req, res, target, onError).then((answered) => {
      if (!answered) next();
    }, next);
  };
}

async function put(deps: DavDeps, req: Request, res: Response, target: { eventId: string; path: string }, onError: ReturnType<typeof davErrorHandler>): Promise<boolean> {
  const auth = await authenticateRequest(deps.auth, req, 'webdav');
  authenticatedBefore.set(req, auth);
  if (!auth?.ok) return false;
  let session: FileSession;
  try {
    session = await deps.events.open(auth.principal, target.eventId, { protocol: 'webdav', ip: req.socket.remoteAddress ?? 'unknown' });
  } catch {
    return false;
  }
  if (!session.mayWrite()) return false;
  const { path } = target;
  if (await session.metadata().anyLock()) return false;
  // The upload's own checks (a folder in the way, a missing parent) decide: those refusals are
  // nephele's to answer, and a refused upload has changed nothing.
  let transfer: Transfer | null = null;
  let refusal: unknown = null;
  try {
    transfer = await beginPut(session, path, req.headers);
  } catch (err) {
    if (err instanceof GatewayError && err.code === 'conflict') return false;
    refusal = err;
  }
  // An announced file exists as a name before its bytes do: 204, as nephele answers.
  const existed = transfer?.replaces ?? false;

  // From here on the request is ours.
  answered++;
  await catchErrors(
    async () => {
      if (!transfer) throw asDavError(refusal);
      await writeBody(session, path, req, req.headers, res, transfer);
      res.set({ 'Cache-Control': 'private, no-cache', Date: new Date().toUTCString() });
      if (!existed) res.set('Location', new URL(`${req.baseUrl}/${encodeURIComponent(target.eventId)}/${encodeUrlPath(path)}`, `${req.protocol}://${req.headers.host}`).toString());
      res.status(existed ? 204 : 201).end();
    },
    (code: number, message: string, error: Error) => onError(code, message, req, res as AuthResponse, error),
  )();
  return true;
}
