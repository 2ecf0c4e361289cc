/**
 * Runs blocking filesystem calls on the calling thread, timed: one that takes longer than
 * `stallMs` sends every such call to the thread pool for `backoffMs`, so a stalling disk
 * (dirty-page throttling, slow or network storage) never holds the event loop for long. On this VM
 * a thread-pool round trip cost the main thread 50-200 µs of wake-ups and the request 0.1-0.5 ms of
 * latency, a quarter of a small upload's time.
 */
export class InlineIo {
  private offUntil = 0;

  constructor(private readonly stallMs = 20, private readonly backoffMs = 10_000) {}

  get allowed(): boolean {
    return this.offUntil === 0 || Date.now() >= this.offUntil;
  }

  run<T>(call: () => T): T {
    const started = performance.now();
    try {
      return call();
    } finally {
      if (performance.now() - started > this.stallMs) this.offUntil = Date.now() + this.backoffMs;
    }
  }
}
