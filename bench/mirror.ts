/**
 * The mirror against distribution's proxy mode (`proxy: remoteurl:`), both as child processes in front
 * of the same upstream (a local distribution), each through its own counting, throttling fault proxy
 * (test/helpers/fault-proxy.ts), in the same run, skopeo as the client. Prints:
 *
 * - warm pull: `skopeo copy docker://MIRROR/bench/warm:v1 oci:DIR` of a cached 56 MiB image (target:
 *   tsbuild ≤ 1.0× distribution's time);
 * - upstream bytes for 8 concurrent cold pulls of a 4-layer 10 MiB image, through an 8 MiB/s link so the
 *   pulls overlap as they would behind a real upstream (target: tsbuild 1.0× the image size);
 * - cold pull time of that image through a 1 MiB/s link (target: tsbuild ≤ 1.0× distribution's time).
 *
 * Every figure is measured on both back to back, the order swapped every round, and the median of the
 * rounds is printed with the median of the per-round ratios. Cold figures use a fresh mirror (a new
 * store) per round. BENCH_VERBOSE=1 prints every round.
 */
import { existsSync, rmSync } from 'node:fs';
import { startDistribution } from '../test/helpers/distribution.js';
import { startFaultProxy, type FaultProxy } from '../test/helpers/fault-proxy.js';
import {
  multiImage,
  pushImageHttp,
  randomImage,
  runFor,
  startMirror,
  type MirrorImpl,
  type RunningMirror,
  type SeededImage,
} from '../test/helpers/mirror-upstream.js';
import { tempDir } from '../test/helpers/temp.js';
import { row } from './_measure.js';

const IMPLS: MirrorImpl[] = ['tsbuild', 'distribution'];
const WARM_ROUNDS = 15;
const CONCURRENT_ROUNDS = 3;
const SLOW_ROUNDS = 3;
const CONCURRENT = 8;
const COALESCE_LINK = 8 << 20;
const SLOW_LINK = 1 << 20;
const WARM_LAYERS = [32 << 20, 16 << 20, 8 << 20];

const verbose = Boolean(process.env.BENCH_VERBOSE);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const mib = (bytes: number) => `${(bytes / (1 << 20)).toFixed(1)} MiB`;
const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

/** A mirror of `upstream` (a fault proxy) as a child process; tsbuild's logs at info to a file as distribution's do. */
function mirrorOf(impl: MirrorImpl, upstream: FaultProxy): Promise<RunningMirror> {
  return startMirror({ impl, via: 'cli', logLevel: 'info', upstreams: [{ registry: 'docker.io', url: upstream.url }] });
}

/** skopeo copy from the mirror into a fresh OCI layout; milliseconds. Throws when the pull fails. */
async function pull(mirror: RunningMirror, ref: string, deadlineMs: number): Promise<number> {
  const dir = tempDir('bench-mirror-pull-');
  try {
    const r = await runFor(
      'skopeo',
      ['copy', '--quiet', '--retry-times', '0', '--src-tls-verify=false', `docker://${mirror.host}/${ref}`, `oci:${dir}:pulled`],
      deadlineMs,
      { CONTAINERS_REGISTRIES_CONF: '/dev/null' },
    );
    if (r.code !== 0)
      throw new Error(`${mirror.impl}: skopeo pull of ${ref} failed${r.timedOut ? ` (no end within ${deadlineMs} ms)` : ''}: ${r.stderr.trim()}`);
    return r.ms;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

type Samples = Record<MirrorImpl, number[]>;
const empty = (): Samples => ({ tsbuild: [], distribution: [] });

/** Runs `measure` for both mirrors each round, alternating which goes first; a failing one is reported once and skipped. */
async function rounds(
  what: string,
  count: number,
  failed: Map<MirrorImpl, string>,
  measure: (impl: MirrorImpl, round: number) => Promise<number>,
  show: (v: number) => string,
): Promise<Samples> {
  const samples = empty();
  for (let round = 0; round < count; round++) {
    const order = round % 2 ? [...IMPLS].reverse() : IMPLS;
    for (const impl of order) {
      if (failed.has(impl)) continue;
      try {
        samples[impl].push(await measure(impl, round));
      } catch (e) {
        failed.set(impl, `${what}: ${(e as Error).message.split('\n')[0]}`);
      }
    }
    if (verbose) console.log(`${what} round ${round}: ${IMPLS.map((i) => `${i} ${samples[i].length > round ? show(samples[i][round]!) : '-'}`).join(', ')}`);
  }
  return samples;
}

/** Median of the per-round ratios tsbuild ÷ distribution (rounds where both measured). */
function ratio(s: Samples): number | undefined {
  const n = Math.min(s.tsbuild.length, s.distribution.length);
  if (n === 0) return undefined;
  return median(Array.from({ length: n }, (_, i) => s.tsbuild[i]! / s.distribution[i]!));
}

export async function run(): Promise<void> {
  for (const tool of ['/usr/bin/docker-registry', '/usr/bin/skopeo']) {
    if (!existsSync(tool)) {
      console.log(`mirror bench: ${tool} is not installed; run scripts/setup.sh`);
      return;
    }
  }
  const upstream = await startDistribution();
  const cleanup: (() => Promise<void>)[] = [() => upstream.stop()];
  const failed = new Map<MirrorImpl, string>();
  try {
    const warmImage = await randomImage('bench-warm', 'bench/warm', ['v1'], WARM_LAYERS);
    const coldImage: SeededImage = await multiImage('bench-cold', 'bench/cold', ['v1']);
    await pushImageHttp(upstream.url, warmImage);
    await pushImageHttp(upstream.url, coldImage);

    // Warm pulls: one long-lived mirror each, filled by a first pull.
    const warmMirrors = new Map<MirrorImpl, RunningMirror>();
    for (const impl of IMPLS) {
      try {
        const proxy = await startFaultProxy(upstream.url);
        cleanup.push(() => proxy.close());
        const mirror = await mirrorOf(impl, proxy);
        cleanup.push(() => mirror.close());
        await pull(mirror, 'bench/warm:v1', 120_000);
        warmMirrors.set(impl, mirror);
      } catch (e) {
        failed.set(impl, `warming: ${(e as Error).message.split('\n')[0]}`);
      }
    }
    const warm = await rounds('warm pull', WARM_ROUNDS, failed, (impl) => pull(warmMirrors.get(impl)!, 'bench/warm:v1', 60_000), secs);

    // Cold, concurrent: upstream bytes for 8 pulls at once through a fresh mirror.
    const concurrentMs = empty();
    const concurrent = await rounds(
      `${CONCURRENT} concurrent cold pulls`,
      CONCURRENT_ROUNDS,
      failed,
      async (impl) => {
        const proxy = await startFaultProxy(upstream.url, { rateBytesPerSecond: COALESCE_LINK });
        const mirror = await mirrorOf(impl, proxy);
        try {
          const started = performance.now();
          await Promise.all(Array.from({ length: CONCURRENT }, () => pull(mirror, 'bench/cold:v1', 300_000)));
          concurrentMs[impl].push(performance.now() - started);
          return proxy.bytesOut();
        } finally {
          await mirror.close();
          await proxy.close();
          rmSync(mirror.storage, { recursive: true, force: true });
        }
      },
      mib,
    );

    // Cold, one pull through a 1 MiB/s link.
    const slow = await rounds(
      'cold pull at 1 MiB/s',
      SLOW_ROUNDS,
      failed,
      async (impl) => {
        const proxy = await startFaultProxy(upstream.url, { rateBytesPerSecond: SLOW_LINK });
        const mirror = await mirrorOf(impl, proxy);
        try {
          return await pull(mirror, 'bench/cold:v1', 300_000);
        } finally {
          await mirror.close();
          await proxy.close();
          rmSync(mirror.storage, { recursive: true, force: true });
        }
      },
      secs,
    );

    const w = [44, 22, 22, 8, 26];
    const cell = (s: Samples, impl: MirrorImpl, show: (v: number) => string) => (s[impl].length ? show(median(s[impl])) : 'failed');
    const r = (s: Samples) => ratio(s)?.toFixed(2) ?? '-';
    const image = coldImage.totalBytes;
    const times = (bytes: number) => `${mib(bytes)} (${(bytes / image).toFixed(2)}×)`;
    console.log(
      `images: warm ${mib(warmImage.totalBytes)} (${WARM_LAYERS.length} layers), cold ${mib(image)} (${coldImage.layers.length} layers); client skopeo; each mirror behind its own proxy to one upstream distribution`,
    );
    console.log(row(['', 'tsbuild', 'distribution', 'ratio', 'target'], w));
    console.log(row([`warm pull, ${mib(warmImage.totalBytes)}`, cell(warm, 'tsbuild', secs), cell(warm, 'distribution', secs), r(warm), 'ratio ≤ 1.00'], w));
    console.log(
      row(
        [
          `upstream bytes, ${CONCURRENT} concurrent cold pulls`,
          cell(concurrent, 'tsbuild', times),
          cell(concurrent, 'distribution', times),
          r(concurrent),
          'tsbuild 1.00× the image',
        ],
        w,
      ),
    );
    console.log(
      row(
        [
          `  (their wall time, ${mib(COALESCE_LINK)}/s link)`,
          cell(concurrentMs, 'tsbuild', secs),
          cell(concurrentMs, 'distribution', secs),
          r(concurrentMs),
          '',
        ],
        w,
      ),
    );
    console.log(
      row([`cold pull through a ${mib(SLOW_LINK)}/s link`, cell(slow, 'tsbuild', secs), cell(slow, 'distribution', secs), r(slow), 'ratio ≤ 1.00'], w),
    );
    console.log(
      `(medians of ${WARM_ROUNDS} / ${CONCURRENT_ROUNDS} / ${SLOW_ROUNDS} rounds, order swapped every round; ratio: median of the rounds' tsbuild ÷ distribution; upstream bytes: all response bytes the mirror received from its proxy, × the image's size)`,
    );
    for (const [impl, why] of failed) console.log(`${impl} failed: ${why}`);
  } finally {
    for (const step of cleanup.reverse()) await step().catch(() => undefined);
  }
}
