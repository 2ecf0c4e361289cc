import { readFile } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';

export interface TlsFiles {
  cert: string | null;
  key: string | null;
  hstsMaxAge: number;
}

async function readPair(tls: TlsFiles): Promise<{ cert: Buffer; key: Buffer }> {
  return { cert: await readFile(tls.cert!), key: await readFile(tls.key!) };
}

/**
 * The HTTP port's server: plain HTTP, or HTTPS when a certificate is configured. With TLS every
 * answer carries HSTS (max-age from config; 0 turns it off), so browsers stop trying plain HTTP.
 */
export async function createListener(app: RequestListener, tls: TlsFiles): Promise<Server> {
  if (!tls.cert || !tls.key) return createHttpServer(app);
  const hsts = tls.hstsMaxAge > 0 ? `max-age=${tls.hstsMaxAge}` : null;
  const handler: RequestListener = (req, res) => {
    if (hsts) res.setHeader('Strict-Transport-Security', hsts);
    app(req, res);
  };
  // An https.Server is an http.Server as far as listening, closing and sockets go.
  return createHttpsServer(await readPair(tls), handler) as unknown as Server;
}

/**
 * Re-reads the certificate and key (SIGHUP after a renewal). New connections get the new pair,
 * open ones keep theirs. A bad pair throws and leaves the old one in place.
 */
export async function reloadCertificate(server: Server, tls: TlsFiles): Promise<void> {
  if (!tls.cert || !tls.key) return;
  const pair = await readPair(tls);
  (server as unknown as HttpsServer).setSecureContext(pair);
}

/** A plain-HTTP listener that sends every request to the same path on the HTTPS address (308 keeps the method). */
export function createRedirectServer(target: () => string): Server {
  return createHttpServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').startsWith('/') ? (req.url ?? '/') : '/';
    res.statusCode = 308;
    res.setHeader('Location', target() + path);
    res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    res.setHeader('Connection', 'close');
    res.end('This server speaks HTTPS only.\n');
  });
}
