import { request } from 'node:http';

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** One HTTP exchange over node:http (so a test can pick the client address, e.g. 127.0.0.2). */
export function httpExchange(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string; localAddress?: string } = {}): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method ?? 'GET', headers: opts.headers, localAddress: opts.localAddress }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

export const csrfOf = (html: string): string | null => /name="_csrf" value="([^"]+)"/.exec(html)?.[1] ?? null;

/** A browser-like client of the admin panel: keeps the session cookie and the page's CSRF token. */
export class AdminClient {
  cookie: string | null = null;
  csrf: string | null = null;

  constructor(readonly base: string, readonly localAddress?: string, readonly cookieName = 'handoff-admin') {}

  private keepCookie(a: HttpAnswer): void {
    const set = ([] as string[]).concat(a.headers['set-cookie'] ?? []);
    for (const c of set) {
      const [pair] = c.split(';');
      const [name, value] = [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)];
      if (name !== this.cookieName) continue;
      this.cookie = /Max-Age=0/i.test(c) ? null : value;
    }
  }

  async get(path: string): Promise<HttpAnswer> {
    const a = await httpExchange(this.base + path, { headers: this.cookie ? { cookie: `${this.cookieName}=${this.cookie}` } : {}, localAddress: this.localAddress });
    this.keepCookie(a);
    this.csrf = csrfOf(a.text) ?? this.csrf;
    return a;
  }

  async post(path: string, fields: Record<string, string>, opts: { csrf?: string | null; origin?: string | null; cookie?: string | null } = {}): Promise<HttpAnswer> {
    const body = new URLSearchParams(fields);
    const token = opts.csrf === undefined ? this.csrf : opts.csrf;
    if (token !== null) body.set('_csrf', token);
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
    const origin = opts.origin === undefined ? new URL(this.base).origin : opts.origin;
    if (origin !== null) headers.origin = origin;
    const cookie = opts.cookie === undefined ? this.cookie : opts.cookie;
    if (cookie) headers.cookie = `${this.cookieName}=${cookie}`;
    const a = await httpExchange(this.base + path, { method: 'POST', headers, body: body.toString(), localAddress: this.localAddress });
    this.keepCookie(a);
    this.csrf = csrfOf(a.text) ?? this.csrf;
    return a;
  }

  /** GET the login page (pre-login session), then POST the credentials. */
  async login(username: string, password: string, next?: string): Promise<HttpAnswer> {
    await this.get('/admin/login');
    const a = await this.post('/admin/login', { username, password, ...(next !== undefined ? { next } : {}) });
    // The signed-in session has a new CSRF token: pick it up from the dashboard.
    if (a.status === 303) await this.get('/admin/');
    return a;
  }
}
