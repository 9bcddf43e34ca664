interface Turn {
  controller: AbortController;
  done: Promise<unknown>;
}

/**
 * One operation at a time per key (an upload session), where a newer operation never queues behind an
 * older one: a PATCH whose client went silent would otherwise hold the session as long as its socket
 * lives. `take` aborts the running operation with `reason` and starts once that one let go (an append
 * waiting for its source does at once).
 */
export class Turns {
  private readonly running = new Map<string, Turn>();

  /** Whether an operation on `key` is under way in this process. */
  has(key: string): boolean {
    return this.running.has(key);
  }

  /** Runs `op` as the only operation on `key`, aborting the one before it with `reason`. */
  async take<T>(key: string, reason: Error, op: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const previous = this.running.get(key);
    previous?.controller.abort(reason);
    const controller = new AbortController();
    const run = (async () => {
      await previous?.done;
      controller.signal.throwIfAborted();
      return op(controller.signal);
    })();
    const turn: Turn = { controller, done: run.catch(() => undefined) };
    this.running.set(key, turn);
    try {
      return await run;
    } finally {
      if (this.running.get(key) === turn) this.running.delete(key);
    }
  }
}
