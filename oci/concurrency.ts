/**
 * The one bounded-concurrency helper of the code base. It lives in oci/ because every layer may import
 * oci/ (`cli → builder | registry → store → oci`), not because it is image vocabulary.
 */

/**
 * Runs `fn` over `items` with at most `limit` calls in flight and resolves to their results in the
 * items' order.
 *
 * Failure rule: the first call that rejects decides the outcome. From then on no further item is
 * started; the calls already running are awaited (so nothing still writes after the promise settles),
 * and then the promise rejects with that first error. Errors of calls that fail later are dropped.
 *
 * @param items what to work on; read once, at the start.
 * @param limit calls in flight at most: a whole number ≥ 1, or Infinity. Throws RangeError otherwise.
 * @param fn one call per item, given the item and its index.
 */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  if (!(limit >= 1) || (!Number.isInteger(limit) && limit !== Infinity))
    throw new RangeError(`mapLimit: limit must be a whole number of at least 1, not ${limit}`);
  const results = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const lane = async (): Promise<void> => {
    while (next < items.length && !failure) {
      const i = next++;
      try {
        results[i] = await fn(items[i]!, i);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  if (failure) throw failure.error;
  return results;
}
