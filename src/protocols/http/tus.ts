import express, { type Request, type Response, type Router } from 'express';
import type { Authenticator } from '../../auth/Authenticator.js';
import type { EventService } from '../../cache/EventService.js';
import type { FileSession } from '../../cache/FileSession.js';
import { GatewayError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { KeyedMutex } from '../../shared/semaphore.js';
import { requireAuth, requestContext } from './auth.js';
import { HTTP_STATUS, describe } from './errors.js';

/**
 * tus 1.0 (core, creation, creation-with-upload, termination, checksum) over FileSession.
 * Written here rather than on @tus/server 2, whose node adapter round-trips every body through
 * web streams and whose DataStore contract has no room for our principal and quota reservation.
 */
const VERSION = '1.0.0';
const CHECKSUMS: Record<string, string> = { sha1: 'sha1', sha256: 'sha256', md5: 'md5' };
const OCTETS = 'application/offset+octet-stream';

export function parseMetadata(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!header) return out;
  for (const pair of header.split(',')) {
    const [key, value] = pair.trim().split(' ');
    if (!key) continue;
    if (!/^[\x21-\x7e]+$/.test(key) || key.includes(',')) throw new GatewayError('bad_request', 'invalid Upload-Metadata key');
    if (value !== undefined && !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) throw new GatewayError('bad_request', `Upload-Metadata ${key} is not base64`);
    out[key] = value === undefined ? '' : Buffer.from(value, 'base64').toString('utf8');
  }
  return out;
}

function intHeader(req: Request, name: string): number | null {
  const v = req.headers[name.toLowerCase()];
  if (v === undefined) return null;
  if (typeof v !== 'string' || !/^\d{1,16}$/.test(v)) throw new GatewayError('bad_request', `invalid ${name}`);
  return Number(v);
}

export function tusRouter(deps: { auth: Authenticator; events: EventService; log: Logger; publicUrl: () => string; maxSize: number }): Router {
  const { auth, events, log } = deps;
  const r = express.Router({ mergeParams: true });
  const locks = new KeyedMutex();

  const common = (res: Response) => {
    res.setHeader('Tus-Resumable', VERSION);
    res.setHeader('Cache-Control', 'no-store');
  };
  const fail = (res: Response, err: unknown) => {
    const g = describe(err, log);
    if (res.headersSent) return void res.destroy();
    common(res);
    const status = g.code === 'checksum_mismatch' ? 460 : HTTP_STATUS[g.code];
    res.status(status).json({ error: { code: g.code, message: g.code === 'internal' ? 'internal error' : g.message } });
  };
  const session = (req: Request): Promise<FileSession> => events.open(req.principal!, String((req.params as Record<string, string>).id), requestContext(req, 'tus'));

  r.options(['/', '/:upload'], (_req, res) => {
    common(res);
    res.setHeader('Tus-Version', VERSION);
    res.setHeader('Tus-Extension', 'creation,creation-with-upload,termination,checksum');
    res.setHeader('Tus-Checksum-Algorithm', Object.keys(CHECKSUMS).join(','));
    res.setHeader('Tus-Max-Size', String(deps.maxSize));
    res.status(204).end();
  });

  r.use(requireAuth(auth, 'tus', null, (res, err) => fail(res, err)));
  r.use((req, res, next) => {
    if (req.method !== 'OPTIONS' && req.headers['tus-resumable'] !== VERSION) {
      res.setHeader('Tus-Version', VERSION);
      fail(res, new GatewayError('precondition_failed', `Tus-Resumable ${VERSION} required`));
    } else next();
  });

  const uploadUrl = (req: Request, id: string) => `${deps.publicUrl()}/api/v1/events/${String((req.params as Record<string, string>).id)}/uploads/${id}`;

  r.post('/', async (req, res) => {
    try {
      if (req.headers['upload-defer-length'] !== undefined) throw new GatewayError('bad_request', 'Upload-Defer-Length is not supported');
      const length = intHeader(req, 'Upload-Length');
      if (length === null) throw new GatewayError('bad_request', 'Upload-Length required');
      if (length > deps.maxSize) throw new GatewayError('too_large', 'upload larger than Tus-Max-Size');
      const meta = parseMetadata(req.headers['upload-metadata'] as string | undefined);
      if (!meta.path) throw new GatewayError('bad_request', 'Upload-Metadata must carry path');
      const sha256 = meta.sha256 ? meta.sha256.toLowerCase() : null;
      if (sha256 !== null && !/^[0-9a-f]{64}$/.test(sha256)) throw new GatewayError('bad_request', 'Upload-Metadata sha256 must be 64 hex digits');
      const s = await session(req);
      const transfer = await s.beginWrite(meta.path, { length, sha256, createParents: true, resumable: true });
      const withBody = req.headers['content-type'] === OCTETS;
      await locks.run(transfer.id, async () => {
        try {
          if (withBody) await transfer.append(req, 0);
          if (transfer.complete) await transfer.finish();
          else await transfer.detach();
        } catch (err) {
          await transfer.detach();
          if (withBody && transfer.offset === 0) throw err;
        }
      });
      common(res);
      res.setHeader('Location', uploadUrl(req, transfer.id));
      if (withBody) res.setHeader('Upload-Offset', String(transfer.offset));
      res.status(201).end();
    } catch (err) {
      fail(res, err);
    }
  });

  r.head('/:upload', async (req, res) => {
    try {
      const id = String(req.params.upload);
      const s = await session(req);
      // A client resuming after a drop asks right away: let a PATCH still draining settle first (bounded).
      await Promise.race([locks.run(id, async () => undefined), new Promise((r) => setTimeout(r, 3000).unref())]);
      const info = await s.uploadInfo(id);
      common(res);
      res.setHeader('Upload-Offset', String(info.offset));
      if (info.length !== null) res.setHeader('Upload-Length', String(info.length));
      res.status(200).end();
    } catch (err) {
      common(res);
      res.status(HTTP_STATUS[describe(err, log).code]).end();
    }
  });

  r.patch('/:upload', async (req, res) => {
    try {
      if (req.headers['content-type'] !== OCTETS) throw Object.assign(new GatewayError('bad_request', `Content-Type must be ${OCTETS}`), { status: 415 });
      const offset = intHeader(req, 'Upload-Offset');
      if (offset === null) throw new GatewayError('bad_request', 'Upload-Offset required');
      let verify: { algorithm: string; expected: Buffer } | undefined;
      const checksum = req.headers['upload-checksum'];
      if (typeof checksum === 'string') {
        const [algo, b64] = checksum.split(' ');
        if (!CHECKSUMS[algo] || !b64) throw new GatewayError('bad_request', 'unsupported Upload-Checksum algorithm');
        verify = { algorithm: CHECKSUMS[algo], expected: Buffer.from(b64, 'base64') };
      }
      const s = await session(req);
      const id = String(req.params.upload);
      const newOffset = await locks.run(id, async () => {
        const info = await s.uploadInfo(id);
        if (offset !== info.offset) throw new GatewayError('conflict', `Upload-Offset ${offset} does not match ${info.offset}`);
        if (info.length !== null && info.offset === info.length) {
          req.resume();
          return info.offset;
        }
        const transfer = await s.resumeUpload(id);
        try {
          await transfer.append(req, offset, verify);
          if (transfer.complete) await transfer.finish();
          return transfer.offset;
        } finally {
          await transfer.detach();
        }
      });
      common(res);
      res.setHeader('Upload-Offset', String(newOffset));
      res.status(204).end();
    } catch (err) {
      if ((err as { status?: number }).status === 415) {
        common(res);
        res.status(415).json({ error: { code: 'bad_request', message: (err as Error).message } });
      } else fail(res, err);
    }
  });

  r.delete('/:upload', async (req, res) => {
    try {
      const s = await session(req);
      const id = String(req.params.upload);
      await locks.run(id, async () => {
        const info = await s.uploadInfo(id);
        if (info.length !== null && info.offset === info.length) throw new GatewayError('conflict', 'upload already complete');
        const transfer = await s.resumeUpload(id);
        await transfer.abort(true);
      });
      common(res);
      res.status(204).end();
    } catch (err) {
      fail(res, err);
    }
  });

  return r;
}
