import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { z } from 'zod';
import type { Authenticator } from '../../auth/Authenticator.js';
import { authorizeAdmin } from '../../auth/policy.js';
import type { EventService } from '../../cache/EventService.js';
import { GatewayError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { requireAuth, requestContext } from './auth.js';
import { sendError } from './errors.js';
import { decodeUrlPath, rawSuffix } from './paths.js';
import { streamChanges, waitForChange } from './live.js';
import type { DomainBus } from '../../cache/events.js';

const manifestEntry = z.object({ path: z.string().min(1).max(4096), size: z.number().int().min(0), sha256: z.string().nullable().optional() }).strict();
const recipient = z
  .object({
    name: z.string().min(1).max(64),
    sshPublicKey: z.string().max(16384).nullable().optional(),
    expires: z.string().max(64).nullable().optional(),
    maxDownloads: z.number().int().positive().nullable().optional(),
  })
  .strict();
const createEvent = z
  .object({
    title: z.string().max(200).optional(),
    expires: z.string().max(64).optional(),
    files: z.array(manifestEntry).max(1_000_000),
    recipients: z.array(recipient).max(1000).optional(),
    webhooks: z.array(z.string().max(2048)).max(5).optional(),
  })
  .strict();
const patchEvent = z
  .object({ title: z.string().max(200).optional(), expires: z.string().max(64).optional(), closed: z.boolean().optional(), webhooks: z.array(z.string().max(2048)).max(5).optional() })
  .strict();
const announce = z.union([z.object({ files: z.array(manifestEntry) }).strict(), z.array(manifestEntry)]);

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const where = issue.path.join('.') || 'body';
  const msg = issue.code === 'unrecognized_keys' ? `unknown field ${issue.keys.map((k) => (issue.path.length ? `${where}.${k}` : k)).join(', ')}` : `${where}: ${issue.message}`;
  throw new GatewayError('bad_request', msg);
}

type Handler = (req: Request, res: Response) => Promise<void>;

/** JSON API v1 (CONTRACT). Every route needs a sender's or admin's Bearer token (or Basic password). */
export function apiRouter(deps: { auth: Authenticator; events: EventService; bus: DomainBus; log: Logger; maxJsonBytes: number }): Router {
  const { auth, events, log } = deps;
  const r = express.Router();
  const fail = (res: Response, err: unknown) => sendError(res, err, log);
  const wrap = (fn: Handler) => (req: Request, res: Response) => fn(req, res).catch((err) => fail(res, err));
  const json = express.json({ limit: deps.maxJsonBytes, strict: true, type: () => true });
  const body = [
    (req: Request, res: Response, next: NextFunction) => json(req, res, (err?: unknown) => (err ? fail(res, jsonError(err)) : next())),
  ];

  r.use(requireAuth(auth, 'api', null, (res, err) => fail(res, err)));
  r.use((req, res, next) => {
    if (req.principal?.kind === 'recipient') fail(res, new GatewayError('forbidden', 'the API is for senders and admins'));
    else next();
  });

  r.post('/events', body, wrap(async (req, res) => {
    const input = parse(createEvent, req.body);
    const { event, credentials } = await events.create(req.principal!, input);
    res.status(201).json({ ...event, recipients: event.recipients.map((rv) => ({ ...rv, password: credentials.find((c) => c.name === rv.name)?.password })) });
  }));
  r.get('/events', wrap(async (req, res) => {
    const limit = Math.min(Math.max(Number(req.query.limit ?? 100) || 100, 1), 1000);
    const offset = Math.max(Number(req.query.offset ?? 0) || 0, 0);
    res.json({ events: await events.list(req.principal!, limit, offset) });
  }));
  r.get('/events/:id', wrap(async (req, res) => {
    res.json(await events.get(req.principal!, String(req.params.id)));
  }));
  r.patch('/events/:id', body, wrap(async (req, res) => {
    res.json(await events.update(req.principal!, String(req.params.id), parse(patchEvent, req.body)));
  }));
  r.delete('/events/:id', wrap(async (req, res) => {
    await events.delete(req.principal!, String(req.params.id));
    res.status(204).end();
  }));
  r.post('/events/:id/files', body, wrap(async (req, res) => {
    const parsed = parse(announce, req.body);
    res.status(201).json(await events.announce(req.principal!, String(req.params.id), Array.isArray(parsed) ? parsed : parsed.files));
  }));
  r.delete('/events/:id/files/*path', wrap(async (req, res) => {
    const id = String(req.params.id);
    const path = decodeUrlPath(rawSuffix(req.originalUrl, `${req.baseUrl}/events/${id}/files/`));
    const session = await events.open(req.principal!, id, requestContext(req, 'api'));
    await session.remove(path, { recursive: true });
    res.status(204).end();
  }));
  r.post('/events/:id/recipients', body, wrap(async (req, res) => {
    const { recipient: view, credential } = await events.addRecipient(req.principal!, String(req.params.id), parse(recipient, req.body));
    res.status(201).json({ ...view, password: credential.password });
  }));
  r.delete('/events/:id/recipients/:name', wrap(async (req, res) => {
    await events.revokeRecipient(req.principal!, String(req.params.id), String(req.params.name));
    res.status(204).end();
  }));
  r.get('/events/:id/stream', wrap(async (req, res) => {
    const id = String(req.params.id);
    await events.open(req.principal!, id, requestContext(req, 'api'));
    await streamChanges(req, res, deps, req.principal!, id);
  }));
  r.get('/events/:id/changes', wrap(async (req, res) => {
    const id = String(req.params.id);
    await events.open(req.principal!, id, requestContext(req, 'api'));
    await waitForChange(req, res, deps, req.principal!, id);
  }));
  r.get('/events/:id/log', wrap(async (req, res) => {
    const rows = await events.accessLog(req.principal!, String(req.params.id));
    res.json({
      entries: rows.map((e) => ({ at: new Date(e.at).toISOString(), who: e.who, protocol: e.protocol, action: e.action, path: e.path, bytes: e.bytes, ip: e.ip })),
    });
  }));
  // Operator counters (admin only): the benchmark reads how many argon2 verifications a load cost.
  r.get('/metrics', wrap(async (req, res) => {
    authorizeAdmin(req.principal!);
    const mem = process.memoryUsage();
    res.setHeader('Cache-Control', 'no-store');
    res.json({
      argon2Verifications: auth.hasher.verifications, rssBytes: mem.rss, heapUsedBytes: mem.heapUsed, heapTotalBytes: mem.heapTotal,
      externalBytes: mem.external, arrayBuffersBytes: mem.arrayBuffers, uptimeSeconds: Math.round(process.uptime()),
    });
  }));
  r.use((_req: Request, res: Response) => fail(res, new GatewayError('not_found', 'no such API route')));
  return r;
}

function jsonError(err: unknown): GatewayError {
  const type = (err as { type?: string }).type;
  if (type === 'entity.too.large') return new GatewayError('too_large', 'request body too large');
  return new GatewayError('bad_request', 'request body is not valid JSON');
}
