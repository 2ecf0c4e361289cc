import type { NextFunction, Request, Response } from 'express';
import type { Authenticator, AuthResult } from '../../auth/Authenticator.js';
import type { Principal, Protocol, RequestContext } from '../../auth/principal.js';
import { GatewayError } from '../../shared/errors.js';

declare module 'express-serve-static-core' {
  interface Request {
    principal?: Principal;
  }
}

export function requestContext(req: Request, protocol: Protocol): RequestContext {
  return { protocol, ip: req.socket.remoteAddress ?? 'unknown' };
}

/** Basic (password) or Bearer (API token) credentials from the Authorization header. */
export function parseAuthorization(header: string | undefined): { kind: 'basic'; user: string; pass: string } | { kind: 'bearer'; token: string } | null {
  if (!header) return null;
  const [scheme, value] = header.split(' ', 2);
  if (!value) return null;
  if (/^basic$/i.test(scheme)) {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i < 0) return null;
    return { kind: 'basic', user: decoded.slice(0, i), pass: decoded.slice(i + 1) };
  }
  if (/^bearer$/i.test(scheme)) return { kind: 'bearer', token: value.trim() };
  return null;
}

export async function authenticateRequest(auth: Authenticator, req: Request, protocol: Protocol): Promise<AuthResult | null> {
  const creds = parseAuthorization(req.headers.authorization);
  if (!creds) return null;
  const ctx = requestContext(req, protocol);
  return creds.kind === 'basic' ? auth.password(creds.user, creds.pass, ctx) : auth.token(creds.token, ctx);
}

/**
 * Express middleware: sets req.principal or answers 401 (with a Basic challenge where a browser
 * or WebDAV client should prompt) / 429 for a locked-out client.
 */
export function requireAuth(auth: Authenticator, protocol: Protocol, realm: string | null, onError: (res: Response, err: GatewayError) => void) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    try {
      const result = await authenticateRequest(auth, req, protocol);
      if (result?.ok) {
        req.principal = result.principal;
        next();
        return;
      }
      if (result && result.reason === 'locked') {
        onError(res, new GatewayError('rate_limited', 'too many failed attempts; try again later'));
        return;
      }
      if (realm) res.setHeader('WWW-Authenticate', `Basic realm="${realm}", charset="UTF-8"`);
      onError(res, new GatewayError('unauthenticated', result ? 'invalid credentials' : 'authentication required'));
    } catch (err) {
      next(err);
    }
  };
}
