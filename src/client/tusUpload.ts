import * as tus from 'tus-js-client';
import { explain } from './api.js';
import { AttemptError } from './attemptError.js';
import { fileReader, FileChangedError } from './source.js';
import type { RateLimiter } from './throttle.js';

export { AttemptError };

export interface AttemptOptions {
  endpoint: string;
  server: string;
  token: string;
  file: { path: string; localPath: string; size: number; mtimeMs: number; sha256: string | null; uploadUrl: string | null };
  limiter: RateLimiter | null;
  chunkSize: number;
  onUrl(url: string): void;
  onProgress(bytes: number): void;
}

export interface RunningAttempt {
  done: Promise<void>;
  /** Stops without terminating the upload on the server: it stays resumable. */
  abort(): Promise<void>;
}

/**
 * One tus attempt with tus-js-client: resumes from `uploadUrl` (HEAD → PATCH at the server's
 * offset) or creates the upload. Retries are the uploader's business (retryDelays: null), so a
 * gateway that stays away for minutes does not exhaust a fixed list.
 */
export function startAttempt(o: AttemptOptions): RunningAttempt {
  let upload!: tus.Upload;
  let fail!: (err: AttemptError) => void;
  const done = new Promise<void>((resolve, reject) => {
    fail = reject;
    upload = new tus.Upload({ path: o.file.localPath } as unknown as Buffer, {
      endpoint: o.endpoint,
      uploadUrl: o.file.uploadUrl,
      uploadSize: o.file.size,
      chunkSize: o.chunkSize,
      retryDelays: null,
      storeFingerprintForResuming: false,
      removeFingerprintOnSuccess: false,
      headers: { Authorization: `Bearer ${o.token}` },
      metadata: { path: o.file.path, ...(o.file.sha256 ? { sha256: o.file.sha256 } : {}) },
      // A change noticed mid-slice errors the request body, but tus-js-client does not always see
      // that (a loaded machine left the attempt hanging at the held-back last chunk): end it here.
      fileReader: fileReader(o.file, o.limiter, (err) => {
        void upload.abort(false).catch(() => undefined);
        fail(new AttemptError(err.message, false, 0));
      }),
      onUploadUrlAvailable: () => {
        if (upload.url) o.onUrl(upload.url);
      },
      onProgress: (sent) => o.onProgress(sent),
      onSuccess: () => resolve(),
      onError: (err) => reject(classify(err, o.server)),
    });
    upload.start();
  });
  // tus-js-client's abort settles nothing: end our promise so the uploader's slot frees.
  const abort = async () => {
    await upload.abort(false).catch(() => undefined);
    fail(new AttemptError('stopped', true, 0));
  };
  return { done, abort };
}

function classify(err: Error, server: string): AttemptError {
  if (err instanceof FileChangedError) return new AttemptError(err.message, false, 0);
  const detailed = err as tus.DetailedError;
  const res = detailed.originalResponse ?? null;
  if (!res) {
    const cause = /ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|ENOTFOUND|socket hang up/.exec(String(err.message))?.[0] ?? 'network error';
    if (/vanished|changed on disk|modified after/.test(err.message)) return new AttemptError(err.message, false, 0);
    return new AttemptError(`gateway unreachable (${cause})`, true, 0);
  }
  const status = res.getStatus();
  let code = '';
  let message = '';
  try {
    const body = JSON.parse(res.getBody() || '{}') as { error?: { code?: string; message?: string } };
    code = body.error?.code ?? '';
    message = body.error?.message ?? '';
  } catch {
    /* HEAD and some proxies answer without a body */
  }
  const method = detailed.originalRequest?.getMethod?.() ?? '';
  if (status === 409 && method === 'PATCH') return new AttemptError('offset conflict; resyncing with the server', true, status);
  if (status === 409 && /announced with/.test(message)) return new AttemptError(`${message}: the file changed after it was announced`, false, status);
  if (status === 460 || status === 422) return new AttemptError(`the gateway computed a different sha256: the file changed while it was read`, false, status);
  const transient = status >= 500 && status !== 507 || status === 423 || status === 429 || status === 408;
  return new AttemptError(explain(status, code, message, server), transient, status);
}
