/**
 * Runs blocking filesystem calls on the calling thread, timed: one that takes longer than
 * `stallMs` sends every such call to the thread pool for a while, so a stalling disk (dirty-page
 * throttling, slow or network storage) never holds the event loop for long. On this VM a
 * thread-pool round trip cost the main thread 50-200 µs of wake-ups and the request 0.1-0.5 ms of
 * latency, a quarter of a small upload's time.
 *
 * The while is `backoffMs`, doubled for each stall that follows the previous back-off (the first
 * call allowed again stalls too) up to `maxBackoffMs`, and back to `backoffMs` after a call that
 * did not stall. So an occasional slow call costs a short back-off, and a disk that is slow all the
 * time gets one blocking call per `maxBackoffMs`.
 */
export class InlineIo {
  private offUntil = 0;
  private backoff: number;
  /** Set by a stall, cleared by the next call that does not stall. */
  private stalled = false;

  constructor(
    private readonly stallMs = 20,
    private readonly backoffMs = 10_000,
    private readonly maxBackoffMs = backoffMs,
    private readonly now: () => number = Date.now,
  ) {
    this.backoff = backoffMs;
  }

  get allowed(): boolean {
    return this.offUntil === 0 || this.now() >= this.offUntil;
  }

  run<T>(call: () => T): T {
    const started = performance.now();
    try {
      return call();
    } finally {
      if (performance.now() - started > this.stallMs) {
        if (this.stalled) this.backoff = Math.min(this.backoff * 2, this.maxBackoffMs);
        this.stalled = true;
        this.offUntil = this.now() + this.backoff;
      } else if (this.stalled) {
        this.stalled = false;
        this.backoff = this.backoffMs;
      }
    }
  }
}
