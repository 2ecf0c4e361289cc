import express, { type Request, type Response, type Router } from 'express';
import ejs from 'ejs';
import { join } from 'node:path';
import type { Authenticator } from '../../auth/Authenticator.js';
import type { EventService } from '../../cache/EventService.js';
import { GatewayError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { formatBytes } from '../../shared/format.js';
import { requireAuth, requestContext } from './auth.js';
import { serveFile } from './download.js';
import { sendError } from './errors.js';
import { decodeUrlPath, encodeUrlPath, rawSuffix } from './paths.js';
import { serveZip } from './zip.js';
import { streamChanges } from './live.js';
import type { DomainBus } from '../../cache/events.js';


const STATE_LABEL: Record<string, string> = { pending: 'waiting for upload', uploading: 'uploading', complete: 'ready', failed: 'failed', removed: 'removed' };

/** Recipient web access: /e/EVENT/ listing, /e/EVENT/files/PATH, /e/EVENT/zip. HTTP Basic with the recipient's (or owner's) credentials. */
export function recipientRouter(deps: { auth: Authenticator; events: EventService; bus: DomainBus; log: Logger; viewsDir: string }): Router {
  const { auth, events, log } = deps;
  const r = express.Router({ mergeParams: true });
  const fail = (res: Response, err: unknown) => sendError(res, err, log);

  r.use(requireAuth(auth, 'http', 'Handoff', (res, err) => fail(res, err)));

  r.get('/', async (req, res) => {
    try {
      const id = eventParam(req);
      await events.open(req.principal!, id, requestContext(req, 'http'));
      const view = await events.get(req.principal!, id);
      const files = view.files
        .filter((f) => f.state !== 'removed')
        .map((f) => ({
          ...f,
          url: f.state === 'complete' || (f.state === 'uploading' && f.size !== null) ? `files/${encodeUrlPath(f.path)}` : null,
          sizeLabel: formatBytes(f.size),
          stateLabel: f.state === 'uploading' && f.size ? `uploading ${Math.floor((100 * f.bytes) / f.size)}%` : STATE_LABEL[f.state],
        }));
      setPageHeaders(res);
      await renderPage(res, join(deps.viewsDir, 'event.ejs'), {
        title: view.title || 'Files for you',
        expiresAt: view.expiresAt,
        expiresLabel: new Date(view.expiresAt).toUTCString(),
        files,
        completeCount: files.filter((f) => f.state === 'complete').length,
        zipUrl: 'zip',
      });
    } catch (err) {
      fail(res, err);
    }
  });

  r.get('/events', async (req, res) => {
    try {
      const id = eventParam(req);
      await events.open(req.principal!, id, requestContext(req, 'http'));
      await streamChanges(req, res, deps, req.principal!, id);
    } catch (err) {
      fail(res, err);
    }
  });

  r.get('/zip', async (req, res) => {
    try {
      const id = eventParam(req);
      const session = await events.open(req.principal!, id, requestContext(req, 'http'));
      await serveZip(res, session, `handoff-${id}`, req.query.follow === '1');
    } catch (err) {
      fail(res, err);
    }
  });

  r.get('/files/*path', async (req, res) => {
    try {
      const id = eventParam(req);
      const path = decodeUrlPath(rawSuffix(req.originalUrl, `${req.baseUrl}/files/`));
      const session = await events.open(req.principal!, id, requestContext(req, 'http'));
      await serveFile(req, res, session, path);
    } catch (err) {
      fail(res, err);
    }
  });

  r.use((_req: Request, res: Response) => fail(res, new GatewayError('not_found', 'not found')));
  return r;
}

export function setPageHeaders(res: Response): void {
  res.setHeader('Content-Security-Policy', "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('Cache-Control', 'private, no-store');
}

/** ejs with `<%= %>` escaping; user data only ever reaches templates as values, never as options. */
export async function renderPage(res: Response, file: string, data: Record<string, unknown>): Promise<void> {
  const html = await ejs.renderFile(file, data, { async: false, cache: process.env.NODE_ENV === 'production', strict: false });
  res.status(200).type('html').send(html);
}

/** The event id from a router mounted at /e/:id with mergeParams. */
function eventParam(req: Request): string {
  return String((req.params as Record<string, string>).id);
}
