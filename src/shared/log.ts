import { pino, type Logger } from 'pino';

export type { Logger };

/** Keys whose values never reach a log line, wherever they appear in a logged object. */
const REDACT = [
  'password', '*.password', 'token', '*.token', 'authorization', '*.authorization',
  'headers.authorization', 'req.headers.authorization', 'secret', '*.secret', 'cookie', '*.cookie',
];

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    { level, redact: { paths: REDACT, censor: '[redacted]' }, base: undefined, timestamp: pino.stdTimeFunctions.isoTime },
    destination ?? process.stderr,
  );
}
