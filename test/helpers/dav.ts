import { basic, type Account, type TestGateway } from './gateway.js';

export interface DavEvent {
  id: string;
  /** http://127.0.0.1:PORT/dav/EVENT/ */
  url: string;
  owner: Account;
  recipients: Array<{ name: string; username: string; password: string }>;
}

/** A fresh event of `owner` with the named recipients, to be filled over WebDAV. */
export async function davEvent(
  gw: TestGateway, owner: Account, recipients: string[] = [], files: Array<{ path: string; size: number; sha256?: string }> = [],
): Promise<DavEvent> {
  const r = await gw.api(owner.token, 'POST', '/api/v1/events', { files, recipients: recipients.map((name) => ({ name })) });
  if (r.status !== 201) throw new Error(`event create: ${r.status} ${JSON.stringify(r.body)}`);
  return { id: r.body.id, url: `${gw.url}/dav/${r.body.id}/`, owner, recipients: r.body.recipients };
}

export interface DavResponse {
  status: number;
  headers: Headers;
  body: string;
}

/** One WebDAV request with fetch (any method); `auth` is [user, password] or null. */
export async function dav(method: string, url: string, auth: [string, string] | null, opts: { headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<DavResponse> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (auth) headers.authorization = basic(auth[0], auth[1]);
  const res = await fetch(url, { method, headers, body: opts.body });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

export const PROPFIND_ALL = '<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>';
export const LOCK_BODY = (owner = '<D:owner>test</D:owner>') =>
  `<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype>${owner}</D:lockinfo>`;

/** The hrefs of a multistatus body, decoded. */
export function hrefs(body: string): string[] {
  return [...body.matchAll(/<(?:D:)?href>([^<]*)<\/(?:D:)?href>/g)].map((m) => decodeURIComponent(m[1]));
}
