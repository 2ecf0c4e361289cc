import type { Request } from 'express';
import { BadGatewayError, ForbiddenError, PreconditionFailedError, type AuthResponse, type Plugin } from 'nephele';
import { dav, DavStatusError } from './errors.js';
import { guardXmlBody } from './xmlBody.js';
import { propfind } from './propfind.js';
import { serveNode } from '../http/download.js';
import type { EventResource } from './resource.js';
import type { EventAdapter } from './adapter.js';
import type { DavUser } from './authenticator.js';

interface MoveData {
  exists: boolean;
  overwrite: string | undefined;
}

function checkDestination(request: Request, response: AuthResponse, destination: URL | undefined): void {
  if (!destination) return;
  if (destination.host !== request.headers.host) throw new BadGatewayError('Destination is on another server');
  const base = response.locals.baseUrl.pathname;
  // Confined to the same event: a COPY/MOVE elsewhere is refused before nephele looks for an adapter.
  if (destination.pathname !== base.replace(/\/$/, '') && !destination.pathname.startsWith(base)) throw new ForbiddenError('Destination is outside this event');
  // RFC 4918 §9.9.4 / §9.8.5: source and destination the same is 403.
  const adapter = response.locals.adapter as EventAdapter;
  if (adapter.pathOf(destination) === adapter.pathOf(new URL(request.originalUrl, destination))) throw new ForbiddenError('source and destination are the same');
}

function refuseOverwrite(data: MoveData): void {
  // RFC 4918 §9.8.5: Overwrite: F onto an existing resource is a top-level 412, not a 207 with an inner 412.
  if (data.exists && data.overwrite === 'F') throw new PreconditionFailedError('the destination exists and Overwrite is F');
}

/** Closes nephele alpha.67's protocol gaps in hooks it offers, so nephele itself stays unpatched. */
export function gapsPlugin(): Plugin {
  return {
    async afterAuth(request, response) {
      const user = response.locals.user as DavUser | undefined;
      await guardXmlBody(request, user?.principal.name ?? null);
    },
    async prePropfind(request, response, data) {
      // Like Apache's default: whole-tree listings are refused, so one request cannot walk a huge event.
      const depth = request.get('Depth');
      if (depth === undefined || depth.trim().toLowerCase() === 'infinity') {
        throw new DavStatusError(403, 'Depth: infinity is not supported', 'propfind-finite-depth');
      }
      await propfind(request, response, data.resource as EventResource);
      return false;
    },
    async beforeGet(request, response, data) {
      // A complete file is sent by the download path (recycled buffers, positional reads, the same
      // headers as /e/ downloads) instead of nephele's stream pipe, which ran at 0.4x Apache here.
      const resource = data.resource as EventResource;
      if (resource.node?.kind !== 'file') return;
      const session = await resource.adapter.session();
      await dav(() => serveNode(request, response, session, resource.node!));
      return false;
    },
    async preCopy(request, response, data) {
      checkDestination(request, response, data.destination);
    },
    async preMove(request, response, data) {
      checkDestination(request, response, data.destination);
    },
    async beforeCopy(_request, _response, data) {
      refuseOverwrite(data);
    },
    async beforeMove(_request, _response, data) {
      refuseOverwrite(data);
    },
    async beginPut(request, response, data) {
      // An announced file without content has no representation, so `If-None-Match: *` (davfs2 on a
      // new file) holds; nephele cannot tell, because the lock on it makes the resource look present.
      if (request.get('If-None-Match')?.trim() !== '*') return;
      const adapter = response.locals.adapter as EventAdapter;
      if (await adapter.announced(adapter.pathOf(data.url))) delete request.headers['if-none-match'];
    },
    async beforeUnlock(_request, _response, data) {
      // nephele answers a token that matches no lock with 207; RFC 4918 §9.11.1 wants 409 and this precondition.
      if (!data.lock) throw new DavStatusError(409, 'no lock with that token here', 'lock-token-matches-request-uri');
    },
  };
}
