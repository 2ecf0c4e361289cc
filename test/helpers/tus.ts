import { request } from 'node:http';

export const TUS = { 'Tus-Resumable': '1.0.0' };

export function metadata(fields: Record<string, string>): string {
  return Object.entries(fields)
    .map(([k, v]) => `${k} ${Buffer.from(v).toString('base64')}`)
    .join(',');
}

/** POST a tus upload; returns the upload URL (Location). */
export async function createUpload(url: string, token: string, eventId: string, path: string, length: number, sha256?: string): Promise<{ status: number; location: string | null; body: string }> {
  const res = await fetch(`${url}/api/v1/events/${eventId}/uploads/`, {
    method: 'POST',
    headers: { ...TUS, authorization: `Bearer ${token}`, 'Upload-Length': String(length), 'Upload-Metadata': metadata(sha256 ? { path, sha256 } : { path }) },
  });
  return { status: res.status, location: res.headers.get('location'), body: await res.text() };
}

export async function patch(location: string, token: string, offset: number, data: Buffer): Promise<{ status: number; offset: number | null; body: string }> {
  const res = await fetch(location, {
    method: 'PATCH',
    headers: { ...TUS, authorization: `Bearer ${token}`, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': String(offset) },
    body: data,
  });
  const o = res.headers.get('upload-offset');
  return { status: res.status, offset: o === null ? null : Number(o), body: await res.text() };
}

export async function head(location: string, token: string): Promise<{ status: number; offset: number | null; length: number | null }> {
  const res = await fetch(location, { method: 'HEAD', headers: { ...TUS, authorization: `Bearer ${token}` } });
  const o = res.headers.get('upload-offset');
  const l = res.headers.get('upload-length');
  return { status: res.status, offset: o === null ? null : Number(o), length: l === null ? null : Number(l) };
}

/**
 * Sends `sendBytes` of a PATCH body and then kills the connection, as a dropped network would.
 * Resolves once the socket is gone.
 */
export function interruptedPatch(location: string, token: string, offset: number, data: Buffer, sendBytes: number): Promise<void> {
  const u = new URL(location);
  return new Promise((resolve) => {
    const req = request({
      host: u.hostname, port: u.port, method: 'PATCH', path: u.pathname,
      headers: { ...TUS, authorization: `Bearer ${token}`, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': String(offset), 'Content-Length': String(data.length) },
    });
    req.on('error', () => resolve());
    req.on('close', () => resolve());
    req.write(data.subarray(0, sendBytes), () => setTimeout(() => req.destroy(), 200));
  });
}

/**
 * A throttled PATCH: `data` goes out in `piece`-byte writes every `tickMs`. `onProgress` sees the
 * bytes sent so far; `abortAt` cuts the connection after that many bytes.
 */
export function slowPatch(location: string, token: string, offset: number, data: Buffer, opts: { piece: number; tickMs: number; abortAt?: number; onProgress?: (sent: number) => void }): Promise<number> {
  const u = new URL(location);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: u.hostname, port: u.port, method: 'PATCH', path: u.pathname,
        headers: { ...TUS, authorization: `Bearer ${token}`, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': String(offset), 'Content-Length': String(data.length) },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', (err) => (opts.abortAt !== undefined ? resolve(0) : reject(err)));
    let sent = 0;
    const tick = () => {
      if (opts.abortAt !== undefined && sent >= opts.abortAt) {
        req.destroy();
        return;
      }
      const end = Math.min(data.length, sent + opts.piece);
      req.write(data.subarray(sent, end));
      sent = end;
      opts.onProgress?.(sent);
      if (sent < data.length) setTimeout(tick, opts.tickMs);
      else req.end();
    };
    tick();
  });
}
