/**
 * How the gateway process is started (systemd unit, `npm start`, the bench): a smaller V8 young
 * generation, a 2000 MB heap limit and fixed glibc malloc thresholds. Measured on the WebDAV and
 * SFTP bench rows: peak RSS 114-222 MB untuned, 117-190 MB with the young generation and malloc
 * tuning, throughput within run-to-run noise (README, "Memory"). Both must be in place before the
 * process starts (V8 sizes its heap at start-up, glibc reads its variables at load), so they live
 * in the launchers; `test/unit/ops-tuning` checks the launchers carry exactly these values.
 *
 * The heap limit: V8 lets the old generation grow to its live size times a factor before the next
 * full collection, and caps that factor by the heap limit: 4 at 2 GiB and above (the default limit
 * here is 4 GiB), about 2 just below. The gateway's promoted garbage is short-lived (20-21 MB live
 * before and after 3,000 small PUTs), so with a factor of 4 the old space filled to 71-78 MB before
 * each collection; with --max-old-space-size=2000 to 29-37 MB. Sequential 4 KiB PUTs, two
 * alternating pairs: peak RSS 157-164 -> 118-124 MB, mark-compacts 3 -> 7 per 6,000 PUTs (42 -> 96
 * ms, under 10 µs a PUT), and none at all in 3 GiB of WebDAV PUTs (6 without). The live heap stays
 * far below the limit.
 */
export const GATEWAY_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4', '--max-old-space-size=2000'];

/**
 * Fixed thresholds switch off glibc's dynamic mmap threshold, which otherwise climbs to the size
 * of the largest freed buffer (256 KiB SFTP packets, 64 MiB argon2 blocks up to its 32 MiB cap),
 * after which such buffers come from the heap and freed ones stay resident.
 */
export const GATEWAY_MALLOC_ENV: Readonly<Record<string, string>> = { MALLOC_MMAP_THRESHOLD_: '262144', MALLOC_TRIM_THRESHOLD_: '524288' };

/** What of the tuning this process was started without (logged once at start-up). */
export function missingTuning(execArgv: readonly string[], env: NodeJS.ProcessEnv): string[] {
  const flags = GATEWAY_NODE_FLAGS.filter((f) => !execArgv.includes(f) && !(env.NODE_OPTIONS ?? '').split(/\s+/).includes(f));
  const vars = Object.entries(GATEWAY_MALLOC_ENV).filter(([k, v]) => env[k] !== v).map(([k, v]) => `${k}=${v}`);
  return [...flags, ...vars];
}
