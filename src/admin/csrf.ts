import type { NextFunction, Request, Response } from 'express';
import { safeEqual } from '../shared/ids.js';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export type CsrfFailure = 'origin' | 'token';

/** Origins a form of ours can come from: the public URL, and the host the browser actually used. */
function allowedOrigins(req: Request, publicUrl: string): Set<string> {
  const out = new Set<string>([new URL(publicUrl).origin]);
  const host = req.get('host');
  if (host) out.add(`${req.protocol}://${host}`);
  return out;
}

function originOf(req: Request): string | null | undefined {
  const origin = req.get('origin');
  if (origin !== undefined) return origin;
  const referer = req.get('referer');
  if (referer === undefined) return undefined;
  try {
    return new URL(referer).origin;
  } catch {
    return null;
  }
}

/**
 * One guard for every state-changing admin route (ASVS 4.2.2): the request must carry the
 * session's synchronizer token (form field `_csrf` or header `X-CSRF-Token`), and when the browser
 * says where it comes from (Origin, else Referer) that must be us. `null` origins are refused.
 * Mounted before every route, so a new POST route is guarded without anyone remembering to.
 */
export function csrfGuard(publicUrl: () => string, reject: (req: Request, res: Response, why: CsrfFailure) => void) {
  return (req: Request, res: Response, next: NextFunction): void => {
    if (SAFE_METHODS.has(req.method)) return next();
    const origin = originOf(req);
    if (origin !== undefined && (origin === null || !allowedOrigins(req, publicUrl()).has(origin))) return reject(req, res, 'origin');
    const body = req.body as Record<string, unknown> | undefined;
    const sent = typeof body?._csrf === 'string' ? body._csrf : req.get('x-csrf-token');
    const expected = req.adminSession?.csrf;
    if (!expected || typeof sent !== 'string' || !safeEqual(sent, expected)) return reject(req, res, 'token');
    next();
  };
}
