import { GatewayError } from './errors.js';

const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Parses '90s', '12h', '7d', '2w' into milliseconds; returns null when the text is not a duration. */
export function parseDuration(text: string): number | null {
  const m = /^(\d{1,9})([smhdw])$/.exec(text.trim());
  if (!m) return null;
  return Number(m[1]) * UNITS[m[2]];
}

/** A duration or an ISO-8601 time, resolved to an absolute time in ms (CONTRACT `expires`). */
export function resolveExpiry(text: string, now: number, field = 'expires'): number {
  const d = parseDuration(text);
  if (d !== null) return now + d;
  if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
    const t = Date.parse(text);
    if (!Number.isNaN(t)) return t;
  }
  throw new GatewayError('bad_request', `${field}: expected a duration like 7d or an ISO-8601 time`);
}
