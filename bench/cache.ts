/**
 * Rebuilds: tsbuild and `buildah bud --layers --runtime /usr/sbin/runc`, alternately in one run, on the
 * build bench's context (2,000 small files, a RUN writing 64 MiB, a late COPY), each in its own state root
 * holding only the busybox base:
 *
 *   cold     the first build of the context              (target ≤ 0.5× buildah)
 *   no-op    the same build again, nothing changed       (target ≤ 0.3×)
 *   partial  after changing the file of the late COPY    (target ≤ 0.4×)
 *
 * Ratios are medians of per-round pairs (the machine is shared and drifts; a pair sees one state). Then a
 * context of TSBUILD_BENCH_FILES (default 200,000) small files under `COPY . /app`: tsbuild's peak RSS
 * (GNU time's maximum resident set size of the tsbuild process) on the first build and on a no-op rebuild
 * (target ≤ 256 MiB both), and the no-op rebuild's time next to buildah's.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeOciDirectory } from '../builder/image/index.js';
import { Store } from '../store/index.js';
import { makeBusyboxImage } from '../test/helpers/busybox-image.js';
import { row } from './_measure.js';

const tsbuildBin = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const ROUNDS = Number(process.env.TSBUILD_BENCH_ROUNDS ?? 3);
const BIG = Number(process.env.TSBUILD_BENCH_FILES ?? 200_000);
/** TSBUILD_BENCH_BIG_PEER=0 leaves buildah out of the big context (its two builds take minutes). */
const BIG_PEER = process.env.TSBUILD_BENCH_BIG_PEER !== '0';

const DOCKERFILE = `FROM busybox:latest
COPY files/ /app/files/
RUN head -c 67108864 /dev/urandom > /data.bin && sync
COPY late.txt /app/late.txt
CMD ["sh"]
`;

function makeContext(dir: string, files: number, dockerfile: string): void {
  const perDir = 100;
  for (let d = 0; d * perDir < files; d++) {
    mkdirSync(join(dir, 'files', `d${d}`), { recursive: true });
    for (let f = 0; f < perDir && d * perDir + f < files; f++)
      writeFileSync(join(dir, 'files', `d${d}`, `f${f}.txt`), `file ${d}/${f}\n`.repeat(1 + ((d * 100 + f) % 40)));
  }
  writeFileSync(join(dir, 'late.txt'), 'late\n');
  writeFileSync(join(dir, 'Dockerfile'), dockerfile);
}

interface Measured {
  seconds: number;
  /** Peak RSS of the measured process in MiB (GNU time -f %M). */
  rssMiB: number;
}

/** Wall time and peak RSS of a command, through GNU time. */
function measure(cmd: string, args: string[]): Measured {
  const start = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', 'RSS_KB=%M', cmd, ...args], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 64 << 20 });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr.trim().split('\n').slice(-5).join(' | ')}`);
  const kb = Number(/RSS_KB=(\d+)/.exec(r.stderr)?.[1] ?? 0);
  return { seconds, rssMiB: kb / 1024 };
}

function must(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

function buildahArgs(dir: string): string[] {
  return ['--root', join(dir, 'buildah-root'), '--runroot', join(dir, 'buildah-runroot'), '--storage-driver', 'overlay'];
}

interface Contender {
  name: string;
  prepare(dir: string): Promise<void>;
  build(dir: string, context: string): Measured;
  cleanup(dir: string): void;
}

function contenders(layout: string): Contender[] {
  return [
    {
      name: 'tsbuild',
      prepare: async (dir) => void (await makeBusyboxImage(await Store.open(join(dir, 'root')), 'busybox:latest')),
      build: (dir, context) => measure(process.execPath, [tsbuildBin, '--root', join(dir, 'root'), 'build', '-q', '-t', 'bench:v1', context]),
      cleanup: (dir) => rmSync(dir, { recursive: true, force: true }),
    },
    {
      name: 'buildah',
      prepare: async (dir) => {
        const id = must('buildah', [...buildahArgs(dir), 'pull', '-q', `oci:${layout}:latest`]);
        must('buildah', [...buildahArgs(dir), 'tag', id, 'docker.io/library/busybox:latest']);
      },
      build: (dir, context) => measure('buildah', [...buildahArgs(dir), 'bud', '--layers', '--runtime', '/usr/sbin/runc', '-q', '-t', 'bench:v1', context]),
      cleanup: (dir) => {
        spawnSync('buildah', [...buildahArgs(dir), 'rm', '--all'], { stdio: 'ignore' });
        spawnSync('buildah', [...buildahArgs(dir), 'rmi', '--all', '--force'], { stdio: 'ignore' });
        spawnSync('umount', ['-R', join(dir, 'buildah-root', 'overlay')], { stdio: 'ignore' });
        rmSync(dir, { recursive: true, force: true });
      },
    },
  ];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const PHASES = ['cold', 'no-op', 'partial'] as const;
const TARGETS: Record<(typeof PHASES)[number], number> = { cold: 0.5, 'no-op': 0.3, partial: 0.4 };

export async function run(): Promise<void> {
  // Lowercase only: buildah derives an image name from the oci: layout path.
  const base = join(process.env.TSBUILD_BENCH_TMP ?? tmpdir(), `tsbuild-bench-cache-${randomBytes(4).toString('hex')}`);
  mkdirSync(base, { recursive: true });
  try {
    const seed = await Store.open(join(base, 'seed'));
    const bb = await makeBusyboxImage(seed, 'busybox:latest');
    const layout = join(base, 'layout');
    await writeOciDirectory(seed, [{ digest: bb.digest, mediaType: bb.manifest.mediaType!, size: bb.manifestBytes.length, names: ['busybox:latest'] }], layout);
    const [ours, theirs] = contenders(layout);

    // --- rebuild ratios on the bench context ---
    const times: Record<string, Record<string, number[]>> = {
      tsbuild: { cold: [], 'no-op': [], partial: [] },
      buildah: { cold: [], 'no-op': [], partial: [] },
    };
    const ratios: Record<string, number[]> = { cold: [], 'no-op': [], partial: [] };
    for (let round = 0; round < ROUNDS; round++) {
      const pair = round % 2 === 0 ? [ours!, theirs!] : [theirs!, ours!];
      const roundTimes: Record<string, Record<string, number>> = {};
      for (const c of pair) {
        const dir = join(base, `${c.name}-${round}`);
        const context = join(dir, 'context');
        mkdirSync(dir, { recursive: true });
        makeContext(context, 2000, DOCKERFILE);
        try {
          await c.prepare(dir);
          const t: Record<string, number> = {};
          t.cold = c.build(dir, context).seconds;
          t['no-op'] = c.build(dir, context).seconds;
          writeFileSync(join(context, 'late.txt'), `late ${round} ${c.name}\n`);
          t.partial = c.build(dir, context).seconds;
          roundTimes[c.name] = t;
          for (const p of PHASES) times[c.name]![p]!.push(t[p]!);
        } finally {
          c.cleanup(dir);
        }
      }
      for (const p of PHASES) ratios[p]!.push(roundTimes.tsbuild![p]! / roundTimes.buildah![p]!);
      const shown = PHASES.map((p) => `${p} ${roundTimes.tsbuild![p]!.toFixed(2)}/${roundTimes.buildah![p]!.toFixed(2)} s`).join(', ');
      console.log(`round ${round + 1} (${pair[0]!.name} first), tsbuild/buildah: ${shown}`);
    }
    const w = [26, 12, 12, 10, 34];
    console.log('rebuilds (2,000-file COPY, 64 MiB RUN, late COPY), medians of', ROUNDS, 'alternating rounds');
    console.log(row(['phase', 'tsbuild', 'buildah', 'ratio', 'per-round ratios (target)'], w));
    for (const p of PHASES) {
      console.log(
        row(
          [
            p,
            `${median(times.tsbuild![p]!).toFixed(3)} s`,
            `${median(times.buildah![p]!).toFixed(3)} s`,
            `${median(ratios[p]!).toFixed(2)}x`,
            `${ratios[p]!.map((r) => r.toFixed(2)).join(' ')} (<= ${TARGETS[p]}x)`,
          ],
          w,
        ),
      );
    }

    // --- a big context: memory and the no-op rebuild ---
    if (BIG > 0) {
      const big = join(base, 'big-context');
      makeContext(big, BIG, 'FROM busybox:latest\nCOPY . /app\n');
      const results: Record<string, { first: Measured; noop: Measured }> = {};
      for (const c of BIG_PEER ? [ours!, theirs!] : [ours!]) {
        const dir = join(base, `${c.name}-big`);
        mkdirSync(dir, { recursive: true });
        try {
          await c.prepare(dir);
          const first = c.build(dir, big);
          const noop = c.build(dir, big);
          results[c.name] = { first, noop };
        } finally {
          c.cleanup(dir);
        }
      }
      const files = BIG.toLocaleString('en-US');
      console.log(`\nCOPY . /app of ${files} small files`);
      const v = [26, 14, 16, 14, 16];
      console.log(row(['', 'first build', 'first peak RSS', 'no-op rebuild', 'no-op peak RSS'], v));
      for (const name of Object.keys(results)) {
        const r = results[name]!;
        console.log(
          row(
            [name, `${r.first.seconds.toFixed(2)} s`, `${r.first.rssMiB.toFixed(0)} MiB`, `${r.noop.seconds.toFixed(2)} s`, `${r.noop.rssMiB.toFixed(0)} MiB`],
            v,
          ),
        );
      }
      if (results.buildah)
        console.log(
          row(['no-op ratio', '', '', `${(results.tsbuild!.noop.seconds / results.buildah.noop.seconds).toFixed(3)}x`, '(RSS target <= 256 MiB)'], v),
        );
    }
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}
