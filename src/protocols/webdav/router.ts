import express, { type Request, type Response, type Router } from 'express';
import { createServer, type AuthResponse } from 'nephele';
import type { Authenticator } from '../../auth/Authenticator.js';
import type { EventService } from '../../cache/EventService.js';
import type { Logger } from '../../shared/log.js';
import { EventAdapter } from './adapter.js';
import { DavAuthenticator, REALM } from './authenticator.js';
import { davErrorHandler, errorDocument } from './errors.js';
import { authenticateRequest } from '../http/auth.js';
import { escapeText } from './xmlRender.js';
import { gapsPlugin } from './plugin.js';
import { quickPut } from './quickPut.js';

export interface DavDeps {
  auth: Authenticator;
  events: EventService;
  log: Logger;
}

const text = (res: Response, status: number, body: string) => res.status(status).type('text/plain').send(body);

/**
 * The mount point itself (`/dav/`): one event per share, so it lists nothing. Clients that walk up
 * from the share (Windows' WebClient, some file managers) get an empty folder after logging in.
 */
async function mountRoot(deps: DavDeps, req: Request, res: Response): Promise<void> {
  req.resume();
  if (req.method === 'OPTIONS') {
    res.set({ DAV: '1, 2', Allow: 'OPTIONS, PROPFIND' }).status(200).end();
    return;
  }
  const result = await authenticateRequest(deps.auth, req, 'webdav');
  if (result && !result.ok && result.reason === 'locked') {
    res.setHeader('Retry-After', '60');
    text(res, 429, '429 Too Many Requests\n');
    return;
  }
  if (!result?.ok) {
    res.setHeader('WWW-Authenticate', `Basic realm="${REALM}", charset="UTF-8"`);
    text(res, 401, '401 Unauthorized\n');
    return;
  }
  if (req.method !== 'PROPFIND') {
    text(res, 404, '404 Not Found\n');
    return;
  }
  const depth = req.get('Depth');
  if (depth !== '0' && depth !== '1') {
    res.status(403).type('application/xml').send(errorDocument('propfind-finite-depth'));
    return;
  }
  const href = escapeText(`${req.baseUrl}/`);
  res.status(207).type('application/xml').send(
    `<?xml version="1.0" encoding="utf-8"?>\n<D:multistatus xmlns:D="DAV:"><D:response><D:href>${href}</D:href><D:propstat><D:prop>` +
      '<D:resourcetype><D:collection/></D:resourcetype></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response></D:multistatus>\n',
  );
}

/** The event id is the first path segment below the mount point. */
export function eventIdOf(req: Request): string {
  const seg = req.path.split('/')[1] ?? '';
  try {
    return decodeURIComponent(seg);
  } catch {
    return '';
  }
}

/**
 * `/dav/EVENT/`: nephele (pinned 1.0.0-alpha.67) as express middleware, with our adapter over
 * FileSession, our Basic authenticator and our error handler. One adapter per request, rooted at
 * the event, so nephele's own "same adapter" rule confines COPY/MOVE to one event.
 */
export function davRouter(deps: DavDeps): Router {
  const server = createServer(
    {
      adapter: async (request: Request, response: AuthResponse) => {
        const locals = response.locals as AuthResponse['locals'] & { davAdapter?: EventAdapter };
        locals.davAdapter ??= new EventAdapter(deps.events, eventIdOf(request), request, response);
        const key = `/${locals.davAdapter.eventId}/`;
        // nephele alpha.67 looks parents up by their full path (mount point included) and walks up to
        // '/', requests by the path below the mount: register the adapter under every key it asks for.
        // Above the event root the adapter answers an empty, lock-free folder.
        const a = locals.davAdapter;
        return { '/': a, [`${request.baseUrl}/`]: a, [key]: a, [`${request.baseUrl}${key}`]: a };
      },
      authenticator: new DavAuthenticator(deps.auth),
      plugins: [gapsPlugin()],
    },
    { compression: false, errorHandler: davErrorHandler(deps.log) },
  );

  server.disable('x-powered-by');
  const r = express.Router();
  r.use((_req, res, next) => {
    // Windows' Web Folders and Office look for this before they treat the share as WebDAV.
    res.setHeader('MS-Author-Via', 'DAV');
    // Served bytes never render in a browser on our origin (same rule as the HTTP downloads).
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Content-Security-Policy', "default-src 'none'; sandbox");
    next();
  });
  r.use((req: Request, res: Response, next) => {
    try {
      // nephele decodes the path itself and would turn a malformed escape into a 500.
      decodeURIComponent(req.path);
    } catch {
      res.status(400).type('text/plain').send('400 Bad Request\n');
      return;
    }
    if (eventIdOf(req) !== '') return next();
    mountRoot(deps, req, res).catch(next);
  });
  r.use(quickPut(deps));
  r.use(server);
  return r;
}
