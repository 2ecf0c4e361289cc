import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * Loads a package with a native binding (better-sqlite3, argon2). A missing or broken build is an install
 * problem: say so, with the fix, at start-up instead of failing on the first request.
 */
export function requireNative<T>(name: string): T {
  try {
    return require(name) as T;
  } catch (err) {
    throw new Error(`the ${name} native binding did not load (run npm ci, or npm rebuild ${name}): ${(err as Error).message}`);
  }
}
