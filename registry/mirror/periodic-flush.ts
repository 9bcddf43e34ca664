/**
 * State kept in memory and written to the store now and then (the mirror's counters and access times):
 * flushes run one at a time — two computing the same delta would write it twice — every `intervalMs`
 * once started, and a last time on close.
 */
export abstract class PeriodicFlush {
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();

  /** Writes what was noted since the last flush; may throw (the notes are kept for the next one). */
  protected abstract flushNow(): Promise<void>;

  /** Writes what was noted since the last flush, after any flush under way. */
  flush(): Promise<void> {
    const run = this.chain.catch(() => undefined).then(() => this.flushNow());
    this.chain = run;
    return run;
  }

  /** Flushes every `intervalMs`; failures go to `onError` and are retried next time. */
  start(intervalMs: number, onError: (e: unknown) => void = () => undefined): void {
    this.timer ??= setInterval(() => void this.flush().catch(onError), intervalMs);
    this.timer.unref();
  }

  /** Stops the timer and writes what is left. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }
}
