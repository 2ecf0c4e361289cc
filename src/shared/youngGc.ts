import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * Collects V8's young generation after every EVERY_BYTES of short-lived buffers, so that they are
 * freed before they can start a full collection.
 *
 * Why: Node's HTTP parser copies every body chunk into a fresh Buffer (no hook lets us reuse it),
 * so an upload allocates its whole size in external memory. V8 frees those buffers at the next
 * scavenge, which it starts only after 32 MiB of them, and it counts external memory allocated
 * since the last mark-compact against the old generation's limit. Once a mark-compact has set
 * that limit close to the live heap (a few MiB of headroom after the HTTP rows of the benchmark),
 * every 32 MiB swing started another full collection: 20-37 mark-compacts per 5 s during WebDAV
 * PUTs, each finding nothing to free (21.5 -> 21.4 MB, --trace-gc, 2026-12-03), 3.8-6.0 s of CPU per
 * GiB instead of 1.5-2.7. A scavenge of a young generation that is nearly all garbage costs
 * 0.3-0.6 ms here, so collecting every 8 MiB keeps the swing under the headroom for about 50 ms per
 * GiB.
 *
 * The collector comes from a context of its own: `gc` never appears on our global object.
 */
const EVERY_BYTES = 8 * 1024 * 1024;

type Collect = (options: { type: 'minor' }) => void;

let pending = 0;
let collect: Collect | null | undefined;

function load(): Collect | null {
  try {
    setFlagsFromString('--expose-gc');
    const fn = runInNewContext('gc') as unknown;
    return typeof fn === 'function' ? (fn as Collect) : null;
  } catch {
    return null;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}

let forced = 0;
/** Young-generation collections started here (tests, diagnostics). */
export const youngCollections = (): number => forced;

/** `bytes` of freshly allocated buffers were just consumed and let go. */
export function releasedBuffers(bytes: number): void {
  pending += bytes;
  if (pending < EVERY_BYTES) return;
  pending = 0;
  if (collect === undefined) collect = load();
  if (!collect) return;
  collect({ type: 'minor' });
  forced++;
}
