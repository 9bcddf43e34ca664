/**
 * Rejects with "`what` did not finish within `ms` ms" when `work` takes longer, so a hang fails the test
 * with a message instead of waiting for ava's timeout. The work itself is not cancelled.
 */
export async function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** Settles every promise, each under its own deadline; returns how many missed it (the hung ones). */
export async function countHung(works: Promise<unknown>[], ms: number): Promise<{ hung: number; failed: unknown[] }> {
  const results = await Promise.allSettled(works.map((w, i) => withDeadline(w, ms, `request ${i}`)));
  const failed = results.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
  return { hung: failed.filter((e) => e instanceof Error && /did not finish within/.test(e.message)).length, failed };
}
