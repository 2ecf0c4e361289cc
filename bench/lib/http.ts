import { Agent, request as httpRequest } from 'node:http';
import { run } from './proc.js';

export interface CurlResult {
  status: number;
  bytes: number;
  seconds: number;
}

const FORMAT = '%{http_code} %{size_download} %{size_upload} %{time_total}\\n';

/** One curl transfer (the same client for the gateway and its peers), timed by curl itself. */
export async function curl(args: string[], timeoutMs: number): Promise<CurlResult> {
  const r = await run('curl', ['-sS', '-o', '/dev/null', '-w', FORMAT, ...args], { timeoutMs });
  const [status, down, up, time] = r.stdout.trim().split(/\s+/).map(Number);
  if (r.code !== 0 || !(status >= 200 && status < 300)) throw new Error(`curl ${args.at(-1)}: exit ${r.code}, HTTP ${status}: ${r.stderr.trim().slice(-300)}`);
  return { status, bytes: Math.max(down, up), seconds: time };
}

/** `count` parallel downloads of `url` in one curl process: total bytes and wall time. */
export async function curlParallel(url: string, count: number, auth: string[], timeoutMs: number): Promise<CurlResult> {
  const args = ['-sS', '--parallel', '--parallel-immediate', '--parallel-max', String(count), '-w', FORMAT, ...auth];
  for (let i = 0; i < count; i++) args.push('-o', '/dev/null', url);
  const r = await run('curl', args, { timeoutMs });
  const lines = r.stdout.trim().split('\n').map((l) => l.split(/\s+/).map(Number));
  const bad = lines.filter(([s]) => !(s >= 200 && s < 300));
  if (r.code !== 0 || lines.length !== count || bad.length) throw new Error(`curl --parallel ${url}: exit ${r.code}, ${bad.length} failed of ${lines.length}: ${r.stderr.trim().slice(-300)}`);
  return { status: 200, bytes: lines.reduce((n, l) => n + l[1], 0), seconds: r.seconds };
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  ms: number;
}

/** Small requests from Node over a keep-alive agent (sequential PUTs, PROPFIND, API calls). */
export class HttpClient {
  readonly agent = new Agent({ keepAlive: true, maxSockets: 64 });

  request(url: string, opts: { method?: string; headers?: Record<string, string>; body?: Buffer | string; timeoutMs?: number } = {}): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const start = process.hrtime.bigint();
      const body = opts.body === undefined ? undefined : Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(opts.body);
      const headers: Record<string, string> = { ...opts.headers };
      if (body) headers['content-length'] = String(body.length);
      const req = httpRequest(url, { method: opts.method ?? 'GET', headers, agent: this.agent, timeout: opts.timeoutMs ?? 60_000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), ms: Number(process.hrtime.bigint() - start) / 1e6 }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`timeout: ${opts.method ?? 'GET'} ${url}`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

export function basicAuth(user: string, pass: string): string {
  return 'Basic ' + Buffer.from(`${user}:${pass}`).toString('base64');
}
