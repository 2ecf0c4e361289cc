import { randomBytes, createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { randomBytesPooled } from './randomPool.js';

/** Crockford base32, lower case: URL-safe and free of look-alike letters. */
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

function base32(bytes: Buffer, chars: number): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5 && out.length < chars) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  return out;
}

/** 26 characters × 5 bits = 130 random bits (CONTRACT: at least 128). */
export function newEventId(): string {
  return base32(randomBytesPooled(17), 26);
}

export const EVENT_ID_PATTERN = /^[0-9a-hjkmnp-tv-z]{26}$/;

export function isEventId(value: string): boolean {
  return EVENT_ID_PATTERN.test(value);
}

export function randomId(chars = 26): string {
  return base32(randomBytesPooled(Math.ceil((chars * 5) / 8) + 1), chars);
}

const PASSWORD_ALPHABET = 'abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789';

/** A generated password: 22 characters from a 57-letter alphabet (~128 bits). */
export function newPassword(length = 22): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      // rejection sampling keeps the distribution uniform
      if (byte < PASSWORD_ALPHABET.length * 4 && out.length < length) out += PASSWORD_ALPHABET[byte % PASSWORD_ALPHABET.length];
    }
  }
  return out;
}

export function newApiToken(): string {
  return `hnd_${randomBytes(32).toString('base64url')}`;
}

/** API tokens are 256-bit random, so a fast hash is enough to store them (no offline guessing). */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export function hmac(key: Buffer, data: string): string {
  return createHmac('sha256', key).update(data).digest('base64url');
}

export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}
