/**
 * Pull throughput: a 3-layer, 200 MiB image of incompressible (uncompressed) layers from a local
 * distribution registry, pulled by tsbuild's registry client into a fresh store and by
 * `skopeo copy docker://… oci:DIR` in the same run, alternating which goes first. Prints the median of
 * 5 rounds and the ratio.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { digestOf, MediaType, parseNormalized, type ImageConfig, type ImageManifest } from '../oci/index.js';
import { Store } from '../store/index.js';
import { pullImage, pushImage, RegistryClient } from '../registry/client/index.js';
import { startDistribution } from '../test/helpers/distribution.js';
import { tsbuild } from '../test/helpers/run.js';
import { mbps, time, timeCommand } from './_measure.js';

const LAYER_SIZES = [100 << 20, 60 << 20, 40 << 20];
const ROUNDS = 5;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export async function run(): Promise<void> {
  const dir = join(tmpdir(), `tsbuild-bench-pull-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const registry = await startDistribution();
  try {
    const seed = await Store.open(join(dir, 'seed'));
    const layers = [];
    for (const size of LAYER_SIZES) {
      const bytes = randomBytes(size);
      const info = await seed.blobs.put(bytes);
      layers.push({ mediaType: MediaType.ociLayer, digest: info.digest, size: info.size });
    }
    const config: ImageConfig = { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) } };
    const cfg = await seed.blobs.put(JSON.stringify(config));
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: cfg.digest, size: cfg.size },
      layers,
    };
    const m = await seed.blobs.put(JSON.stringify(manifest));
    const ref = `${registry.host}/bench/big:v1`;
    await seed.images.set(parseNormalized(ref), m.digest, MediaType.ociManifest);
    const pusher = new RegistryClient({ credentials: async () => undefined });
    await pushImage(pusher, seed, ref);
    pusher.close();
    const total = LAYER_SIZES.reduce((a, b) => a + b, 0) + cfg.size;

    const ours: number[] = [];
    const skopeo: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const runSkopeo = () => {
        const skopeoDir = join(dir, `skopeo-${round}`);
        skopeo.push(timeCommand('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${skopeoDir}:v1`]));
        rmSync(skopeoDir, { recursive: true, force: true });
      };
      const runOurs = async () => {
        const root = join(dir, `ours-${round}`);
        const client = new RegistryClient({ credentials: async () => undefined });
        ours.push(
          await time(async () => {
            const store = await Store.open(root);
            const result = await pullImage(client, store, ref);
            if (result.digest !== m.digest) throw new Error('pulled the wrong image');
          }),
        );
        client.close();
        rmSync(root, { recursive: true, force: true });
      };
      if (round % 2 === 0) {
        runSkopeo();
        await runOurs();
      } else {
        await runOurs();
        runSkopeo();
      }
    }
    const cliRoot = join(dir, 'cli');
    const cliSeconds = await time(async () => {
      const r = await tsbuild(cliRoot, ['pull', '-q', ref], {
        env: { ...process.env, TSBUILD_CONFIG: '/dev/null', CONTAINERS_REGISTRIES_CONF: join(dir, 'none.conf') },
      });
      if (r.code !== 0) throw new Error(`tsbuild pull failed: ${r.stderr}`);
    });
    const a = median(ours);
    const b = median(skopeo);
    console.log(`image: 3 layers, ${(total / (1 << 20)).toFixed(0)} MiB uncompressed random data, local distribution registry`);
    console.log(`tsbuild client pullImage: ${a.toFixed(2)}s (${mbps(total, a)})   rounds: ${ours.map((x) => x.toFixed(2)).join(' ')}`);
    console.log(`skopeo copy → oci:       ${b.toFixed(2)}s (${mbps(total, b)})   rounds: ${skopeo.map((x) => x.toFixed(2)).join(' ')}`);
    console.log(`tsbuild pull (CLI, incl. process start): ${cliSeconds.toFixed(2)}s`);
    console.log(`ratio tsbuild/skopeo: ${(a / b).toFixed(2)}x (target <= 1.0x)`);
  } finally {
    await registry.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
