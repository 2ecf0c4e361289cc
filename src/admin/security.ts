import type { NextFunction, Request, Response } from 'express';

export const ADMIN_BASE = '/admin';

const CSP = [
  "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self'", "connect-src 'self'",
  "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'",
].join('; ');

/** Headers on every admin response, error pages and static files included (ASVS 14.4). */
export function securityHeaders(secure: boolean) {
  return (_req: Request, res: Response, next: NextFunction): void => {
    res.setHeader('Content-Security-Policy', CSP);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('X-Frame-Options', 'DENY');
    res.setHeader('Referrer-Policy', 'same-origin');
    res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
    res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
    res.setHeader('Permissions-Policy', 'camera=(), microphone=(), geolocation=()');
    res.setHeader('Cache-Control', 'no-store');
    if (secure) res.setHeader('Strict-Transport-Security', 'max-age=31536000');
    next();
  };
}

/**
 * Where `?next=` may send a browser after login: a path of this panel, nothing else. Anything that
 * a browser could read as another host (`//x`, `/\x`, `https:x`, encoded or tab-split variants,
 * `javascript:`) falls back to the dashboard (ASVS 5.1.5).
 */
export function safeNext(next: unknown, fallback = `${ADMIN_BASE}/`): string {
  if (typeof next !== 'string' || next.length === 0 || next.length > 2048) return fallback;
  // Browsers drop tabs and newlines in URLs and read '\' as '/': refuse both outright.
  if (/[\u0000-\u001f\u007f\\]/.test(next)) return fallback;
  if (!next.startsWith('/') || next.startsWith('//')) return fallback;
  let url: URL;
  try {
    url = new URL(next, 'http://panel.invalid');
  } catch {
    return fallback;
  }
  if (url.origin !== 'http://panel.invalid') return fallback;
  const path = url.pathname;
  if (path !== ADMIN_BASE && !path.startsWith(`${ADMIN_BASE}/`)) return fallback;
  if (path.startsWith('//') || path.startsWith(`${ADMIN_BASE}/login`)) return fallback;
  return path + url.search;
}
