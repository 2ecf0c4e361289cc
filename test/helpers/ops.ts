import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { packageRoot } from '../../src/shared/packageRoot.js';

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** SHA-256 fingerprint of the server certificate (HTTPS only). */
  fingerprint: string | null;
}

/** One request on a fresh connection, optionally from a chosen loopback address (lockout tests). */
export function rawRequest(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: Buffer | string; localAddress?: string } = {},
): Promise<RawResponse> {
  const u = new URL(url);
  const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(u, {
    method: opts.method ?? 'GET',
    headers: opts.headers,
    localAddress: opts.localAddress,
    agent: false,
    rejectUnauthorized: false,
  });
  return new Promise((resolve, reject) => {
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      const sock = res.socket as TLSSocket;
      const cert = typeof sock.getPeerCertificate === 'function' ? sock.getPeerCertificate() : null;
      const fingerprint = cert && cert.raw ? createHash('sha256').update(cert.raw).digest('hex') : null;
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), fingerprint }));
      res.on('error', reject);
    });
    req.end(opts.body);
  });
}

export function b64(s: string): string {
  return Buffer.from(s).toString('base64');
}

/** tus creation (with the whole body when given); returns the upload URL. */
export async function tusCreate(base: string, eventId: string, auth: string, path: string, length: number, body?: Buffer): Promise<{ status: number; location: string }> {
  const r = await rawRequest(`${base}/api/v1/events/${eventId}/uploads/`, {
    method: 'POST',
    headers: {
      authorization: auth, 'tus-resumable': '1.0.0', 'upload-length': String(length), 'upload-metadata': `path ${b64(path)}`,
      ...(body ? { 'content-type': 'application/offset+octet-stream' } : {}),
    },
    body,
  });
  return { status: r.status, location: String(r.headers.location ?? '') };
}

export async function tusPatch(location: string, auth: string, offset: number, body: Buffer): Promise<RawResponse> {
  return rawRequest(location, {
    method: 'PATCH',
    headers: { authorization: auth, 'tus-resumable': '1.0.0', 'upload-offset': String(offset), 'content-type': 'application/offset+octet-stream' },
    body,
  });
}

export async function tusHead(location: string, auth: string): Promise<RawResponse> {
  return rawRequest(location, { method: 'HEAD', headers: { authorization: auth, 'tus-resumable': '1.0.0' } });
}

export interface ServeChild {
  child: ChildProcess;
  url: string;
  /** Everything the child printed on stdout (the listening lines). */
  stdout: () => string;
  stderr: () => string;
  /** Resolves when a stderr line contains `text` (bounded by the child's lifetime). */
  waitForLog(text: string): Promise<void>;
  exited: Promise<number | null>;
}

/** `handoff serve --config FILE` as a child; resolves once it has started every listener. */
export function startServe(configFile: string): Promise<ServeChild> {
  const child = spawn(process.execPath, [join(packageRoot(), 'dist', 'src', 'main.js'), 'serve', '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiters: Array<{ text: string; resolve: () => void }> = [];
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    for (const w of [...waiters]) if (err.includes(w.text)) (waiters.splice(waiters.indexOf(w), 1), w.resolve());
  });
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /http listening on (\S+)/.exec(out);
      if (m && out.includes('admin panel:')) {
        resolve({
          child, url: m[1], stderr: () => err, stdout: () => out, exited,
          waitForLog: (text) => (err.includes(text) ? Promise.resolve() : new Promise<void>((res, rej) => {
            waiters.push({ text, resolve: res });
            void exited.then(() => rej(new Error(`serve exited before logging "${text}": ${err}`)));
          })),
        });
      }
    });
    void exited.then((code) => reject(new Error(`serve exited with ${code}: ${err}`)));
  });
}
