import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { mapLimit } from '../oci/index.js';

test('results keep the order of the items, however the calls finish', async (t) => {
  const delays = [30, 5, 20, 1, 10];
  const results = await mapLimit(delays, 2, async (ms, i) => {
    await sleep(ms);
    return `${i}:${ms}`;
  });
  t.deepEqual(results, ['0:30', '1:5', '2:20', '3:1', '4:10']);
  t.deepEqual(await mapLimit([], 3, async () => 1), []);
});

test('never more calls in flight than the limit, and the limit is used', async (t) => {
  let running = 0;
  let most = 0;
  await mapLimit(
    Array.from({ length: 20 }, (_, i) => i),
    3,
    async (i) => {
      running++;
      most = Math.max(most, running);
      await sleep(i % 4);
      running--;
    },
  );
  t.is(most, 3);
  let unbounded = 0;
  await mapLimit([1, 2, 3, 4], Infinity, async () => {
    unbounded++;
    await sleep(5);
  });
  t.is(unbounded, 4);
});

test('the first error rejects; no further item starts; running calls are awaited first', async (t) => {
  const started: number[] = [];
  let slowFinished = false;
  const first = new Error('item 1 failed');
  const e = await t.throwsAsync(
    mapLimit([0, 1, 2, 3, 4, 5], 2, async (i) => {
      started.push(i);
      if (i === 0) {
        await sleep(50);
        slowFinished = true;
        throw new Error('item 0 failed later');
      }
      if (i === 1) {
        await sleep(5);
        throw first;
      }
      return i;
    }),
  );
  t.is(e, first, 'the first failure, not the later one');
  t.deepEqual(started, [0, 1], 'nothing started after the failure');
  t.true(slowFinished, 'the call still running was awaited before the rejection');
});

test('a limit that is not a whole number of at least 1 is refused', async (t) => {
  for (const limit of [0, -1, 1.5, Number.NaN]) {
    await t.throwsAsync(
      mapLimit([1], limit, async (x) => x),
      { instanceOf: RangeError, message: /limit must be a whole number of at least 1/ },
    );
  }
});
