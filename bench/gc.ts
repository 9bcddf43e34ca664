/**
 * Garbage collection at scale: `tsbuild registry garbage-collect` against distribution's `registry
 * garbage-collect` (Debian's docker-registry) on the same content, written straight into each one's
 * on-disk layout (as bench/registry-scale.ts does): 10,000 blobs and 1,000 manifests — 100 repositories
 * of 10 tagged manifests, each a config and 6 layers from a pool of 5,000 (one shared with the next), plus 3,000 blobs nothing
 * references (the garbage both must delete).
 *
 * Each round copies the two layouts afresh (not timed) and times each command end to end, process start
 * included, the order swapped every round; the ratio is the median of the rounds' ratios (the VM drifts).
 * tsbuild's run is its online GC (marks twice, claims before deleting; grace period 0 here so the fresh
 * files count as old); distribution's is offline-only. Both must delete exactly the 3,000.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { row } from './_measure.js';

const REPOSITORIES = 100;
const MANIFESTS_PER_REPOSITORY = 10;
const LAYER_POOL = 5_000;
const LAYERS_PER_MANIFEST = 5;
const GARBAGE = 3_000;
const ROUNDS = 3;
const DISTRIBUTION = '/usr/bin/docker-registry';
const tsbuildBin = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';

interface Blob {
  digest: string;
  bytes: Buffer;
}
interface Manifest extends Blob {
  repository: string;
  tag: string;
  blobs: string[];
}

const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const hexOf = (digest: string) => digest.slice('sha256:'.length);
const blobOf = (bytes: Buffer): Blob => ({ digest: sha256(bytes), bytes });

export function makeContent(): { blobs: Blob[]; manifests: Manifest[]; garbage: Blob[] } {
  const layers = Array.from({ length: LAYER_POOL }, () => blobOf(randomBytes(512)));
  const blobs: Blob[] = [...layers];
  const manifests: Manifest[] = [];
  for (let r = 0; r < REPOSITORIES; r++) {
    for (let m = 0; m < MANIFESTS_PER_REPOSITORY; m++) {
      const config = blobOf(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, seed: `${r}-${m}` })));
      blobs.push(config);
      // every pool layer is used: manifest k has layers 5k..5k+4 and shares the next manifest's first
      const k = r * MANIFESTS_PER_REPOSITORY + m;
      const mine = Array.from({ length: LAYERS_PER_MANIFEST + 1 }, (_, i) => layers[(k * LAYERS_PER_MANIFEST + i) % LAYER_POOL]!);
      const bytes = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MANIFEST_TYPE,
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.bytes.length },
          layers: mine.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: l.digest, size: l.bytes.length })),
        }),
      );
      manifests.push({
        ...blobOf(bytes),
        repository: `bench/app-${String(r).padStart(3, '0')}`,
        tag: `v${m}`,
        blobs: [config.digest, ...mine.map((l) => l.digest)],
      });
    }
  }
  const garbage = Array.from({ length: GARBAGE }, () => blobOf(randomBytes(512)));
  return { blobs, manifests, garbage };
}

function put(path: string, content: string | Buffer): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content);
}

/** tsbuild's layout (store/layout.ts, store/repositories.ts) under `<root>/content`. */
export function writeTsbuild(root: string, c: ReturnType<typeof makeContent>): void {
  const base = join(root, 'content');
  for (const b of [...c.blobs, ...c.garbage, ...c.manifests]) put(join(base, 'blobs', 'sha256', hexOf(b.digest)), b.bytes);
  for (const m of c.manifests) {
    const repo = join(base, 'repositories', m.repository);
    for (const d of m.blobs) put(join(repo, '_layers', 'sha256', hexOf(d)), d);
    put(join(repo, '_manifests', 'revisions', 'sha256', hexOf(m.digest)), JSON.stringify({ digest: m.digest, mediaType: MANIFEST_TYPE, size: m.bytes.length }));
    put(join(repo, '_manifests', 'tags', m.tag), m.digest);
  }
}

/** distribution's layout (registry/storage/paths.go) under `<root>/docker/registry/v2`. */
export function writeDistribution(root: string, c: ReturnType<typeof makeContent>): void {
  const base = join(root, 'docker', 'registry', 'v2');
  for (const b of [...c.blobs, ...c.garbage, ...c.manifests]) put(join(base, 'blobs', 'sha256', hexOf(b.digest).slice(0, 2), hexOf(b.digest), 'data'), b.bytes);
  for (const m of c.manifests) {
    const repo = join(base, 'repositories', m.repository);
    for (const d of m.blobs) put(join(repo, '_layers', 'sha256', hexOf(d), 'link'), d);
    put(join(repo, '_manifests', 'revisions', 'sha256', hexOf(m.digest), 'link'), m.digest);
    put(join(repo, '_manifests', 'tags', m.tag, 'current', 'link'), m.digest);
    put(join(repo, '_manifests', 'tags', m.tag, 'index', 'sha256', hexOf(m.digest), 'link'), m.digest);
  }
}

/** Runs a command; its wall seconds and stdout. Fails loudly. */
function timed(cmd: string, args: string[]): { seconds: number; stdout: string } {
  const start = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${(r.stderr || r.stdout).slice(-2000)}`);
  return { seconds, stdout: r.stdout + r.stderr };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function run(): Promise<void> {
  const work = join(tmpdir(), `bench-gc-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  const content = makeContent();
  const templates = { tsbuild: join(work, 'template-tsbuild'), distribution: join(work, 'template-distribution') };
  writeTsbuild(templates.tsbuild, content);
  writeDistribution(templates.distribution, content);
  const totalBlobs = content.blobs.length + content.garbage.length + content.manifests.length;
  console.log(`content: ${totalBlobs} blobs, ${content.manifests.length} manifests in ${REPOSITORIES} repositories, ${GARBAGE} unreferenced`);
  const results = { tsbuild: [] as number[], distribution: [] as number[], ratios: [] as number[] };
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const copy = (name: 'tsbuild' | 'distribution') => {
        const dst = join(work, `${name}-${round}`);
        spawnSync('cp', ['-a', templates[name], dst]);
        return dst;
      };
      const tsRoot = copy('tsbuild');
      const distRoot = copy('distribution');
      const config = join(work, `distribution-${round}.yml`);
      writeFileSync(
        config,
        `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${distRoot}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:0\n`,
      );
      spawnSync('sync');
      const runTsbuild = () => {
        const r = timed(process.execPath, [tsbuildBin, '--root', tsRoot, 'registry', 'garbage-collect', '--grace-period', '0s']);
        const deleted = /(\d+) blobs and 0 manifests deleted/.exec(r.stdout)?.[1];
        if (Number(deleted) !== GARBAGE) throw new Error(`tsbuild deleted ${deleted} blobs, expected ${GARBAGE}: ${r.stdout.slice(-500)}`);
        return r.seconds;
      };
      const runDistribution = () => {
        const r = timed(DISTRIBUTION, ['garbage-collect', config]);
        const eligible = /(\d+) blobs and \d+ manifests eligible for deletion/.exec(r.stdout)?.[1];
        if (Number(eligible) !== GARBAGE) throw new Error(`distribution deleted ${eligible} blobs, expected ${GARBAGE}: ${r.stdout.slice(-500)}`);
        return r.seconds;
      };
      let ts: number;
      let dist: number;
      if (round % 2 === 0) {
        ts = runTsbuild();
        dist = runDistribution();
      } else {
        dist = runDistribution();
        ts = runTsbuild();
      }
      results.tsbuild.push(ts);
      results.distribution.push(dist);
      results.ratios.push(ts / dist);
      rmSync(tsRoot, { recursive: true, force: true });
      rmSync(distRoot, { recursive: true, force: true });
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const widths = [44, 12, 14, 18];
  console.log(row(['gc of 10,000 blobs / 1,000 manifests (s)', 'tsbuild', 'distribution', 'tsbuild ÷ distr.'], widths));
  console.log(
    row(
      [
        'median of ' + ROUNDS + ' rounds (lower is better)',
        median(results.tsbuild).toFixed(2),
        median(results.distribution).toFixed(2),
        `${median(results.ratios).toFixed(2)}x`,
      ],
      widths,
    ),
  );
  for (const [i, s] of results.tsbuild.entries())
    console.log(row([`  round ${i + 1}`, s.toFixed(2), results.distribution[i]!.toFixed(2), `${results.ratios[i]!.toFixed(2)}x`], widths));
}
