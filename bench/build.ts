/**
 * Cold build of the same Dockerfile — a context of 2,000 small files, a RUN writing 64 MiB, a late
 * COPY — with tsbuild and with `buildah bud --layers --runtime runc`, in the same run, each from a
 * fresh state root holding only the busybox base. Prints both times and the ratio (target ≤ 1.0×).
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
import { row, timeCommand } from './_measure.js';

const tsbuildBin = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const ROUNDS = Number(process.env.TSBUILD_BENCH_ROUNDS ?? 3);

const DOCKERFILE = `FROM busybox:latest
COPY files/ /app/files/
RUN head -c 67108864 /dev/urandom > /data.bin && sync
COPY late.txt /app/late.txt
CMD ["sh"]
`;

function makeContext(dir: string): void {
  for (let d = 0; d < 20; d++) {
    mkdirSync(join(dir, 'files', `d${d}`), { recursive: true });
    for (let f = 0; f < 100; f++) writeFileSync(join(dir, 'files', `d${d}`, `f${f}.txt`), `file ${d}/${f}\n`.repeat(1 + ((d * 100 + f) % 40)));
  }
  writeFileSync(join(dir, 'late.txt'), 'late\n');
  writeFileSync(join(dir, 'Dockerfile'), DOCKERFILE);
}

function must(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

async function tsbuildRoot(dir: string): Promise<string> {
  const root = join(dir, 'tsbuild-root');
  await makeBusyboxImage(await Store.open(root), 'busybox:latest');
  return root;
}

function buildahArgs(dir: string): string[] {
  return ['--root', join(dir, 'buildah-root'), '--runroot', join(dir, 'buildah-runroot'), '--storage-driver', 'overlay'];
}

async function buildahRoot(dir: string, layout: string): Promise<void> {
  const id = must('buildah', [...buildahArgs(dir), 'pull', '-q', `oci:${layout}:latest`]);
  must('buildah', [...buildahArgs(dir), 'tag', id, 'docker.io/library/busybox:latest']);
}

function cleanup(dir: string): void {
  spawnSync('buildah', [...buildahArgs(dir), 'rm', '--all'], { stdio: 'ignore' });
  spawnSync('umount', ['-R', join(dir, 'buildah-root', 'overlay')], { stdio: 'ignore' });
  rmSync(dir, { recursive: true, force: true });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export async function run(): Promise<void> {
  // Lowercase only: buildah derives an image name from the oci: layout path.
  const base = join(process.env.TSBUILD_BENCH_TMP ?? tmpdir(), `tsbuild-bench-build-${randomBytes(4).toString('hex')}`);
  mkdirSync(base, { recursive: true });
  try {
    const context = join(base, 'context');
    makeContext(context);
    // The base image as an OCI layout, for buildah.
    const seed = await Store.open(join(base, 'seed'));
    const bb = await makeBusyboxImage(seed, 'busybox:latest');
    const layout = join(base, 'layout');
    await writeOciDirectory(seed, [{ digest: bb.digest, mediaType: bb.manifest.mediaType!, size: bb.manifestBytes.length, names: ['busybox:latest'] }], layout);

    const ours: number[] = [];
    const theirs: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate who goes first so background load hits both alike.
      const order = round % 2 === 0 ? ['tsbuild', 'buildah'] : ['buildah', 'tsbuild'];
      for (const who of order) {
        const dir = join(base, `${who}-${round}`);
        mkdirSync(dir, { recursive: true });
        try {
          if (who === 'tsbuild') {
            const root = await tsbuildRoot(dir);
            ours.push(timeCommand(process.execPath, [tsbuildBin, '--root', root, 'build', '-q', '-t', 'bench:v1', context]));
          } else {
            await buildahRoot(dir, layout);
            theirs.push(timeCommand('buildah', [...buildahArgs(dir), 'bud', '--layers', '--runtime', '/usr/sbin/runc', '-q', '-t', 'bench:v1', context]));
          }
        } finally {
          cleanup(dir);
        }
      }
    }
    const w = [28, 12, 40];
    console.log(row(['cold build (2,000 files, 64 MiB RUN, late COPY)', '', ''], w));
    console.log(row(['tsbuild build', `${median(ours).toFixed(2)} s`, `runs: ${ours.map((x) => x.toFixed(2)).join(' ')}`], w));
    console.log(row(['buildah bud --layers', `${median(theirs).toFixed(2)} s`, `runs: ${theirs.map((x) => x.toFixed(2)).join(' ')}`], w));
    console.log(row(['ratio tsbuild / buildah', `${(median(ours) / median(theirs)).toFixed(2)}x`, '(target <= 1.0x, medians)'], w));
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}
