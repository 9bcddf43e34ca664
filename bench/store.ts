/**
 * Store throughput: writes and reads 1 GiB of blobs (16 × 64 MiB, streamed and verified) and compares
 * with `cp` (write) and `sha256sum` (read + hash) of the same bytes in the same run.
 */
import { createReadStream, createWriteStream, mkdirSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { digestOf, type Digest } from '../oci/index.js';
import { Store } from '../store/index.js';
import { dropCaches, mbps, time, timeCommand } from './_measure.js';

const BLOBS = 16;
const BLOB_SIZE = 64 << 20;

export async function run(): Promise<void> {
  const dir = join(tmpdir(), `tsbuild-bench-store-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  try {
    const sources: { path: string; digest: Digest }[] = [];
    const chunk = randomBytes(BLOB_SIZE);
    for (let i = 0; i < BLOBS; i++) {
      chunk.writeUInt32LE(i, 0);
      const path = join(dir, `src-${i}`);
      await pipeline(async function* () {
        yield chunk;
      }, createWriteStream(path));
      sources.push({ path, digest: digestOf(chunk) });
    }
    const total = BLOBS * BLOB_SIZE;
    const store = await Store.open(join(dir, 'root'));
    mkdirSync(join(dir, 'cp'));

    dropCaches();
    const cpSeconds = timeCommand('sh', ['-c', `for f in ${dir}/src-*; do cp "$f" ${dir}/cp/; done; sync`]);
    dropCaches();
    const writeSeconds = await time(async () => {
      for (const s of sources) await store.blobs.write(createReadStream(s.path, { highWaterMark: 1 << 20 }), { digest: s.digest, size: BLOB_SIZE });
    });
    dropCaches();
    const shaSeconds = timeCommand('sh', ['-c', `sha256sum ${dir}/cp/* > /dev/null`]);
    dropCaches();
    const readSeconds = await time(async () => {
      for (const s of sources) {
        const { Digester } = await import('../oci/index.js');
        const d = new Digester();
        await pipeline(
          await store.blobs.read(s.digest),
          new Writable({
            write(c: Buffer, _e, cb) {
              d.update(c);
              cb();
            },
          }),
        );
        if (d.digest() !== s.digest) throw new Error('read back wrong bytes');
      }
    });
    console.log(`store: ${BLOBS} blobs x ${BLOB_SIZE >> 20} MiB = ${(total / (1 << 30)).toFixed(0)} GiB`);
    console.log(
      `write+verify+fsync  tsbuild ${mbps(total, writeSeconds).padStart(10)}   cp+sync   ${mbps(total, cpSeconds).padStart(10)}   ratio (tsbuild/peer throughput) ${(cpSeconds / writeSeconds).toFixed(2)}`,
    );
    console.log(
      `write+verify        tsbuild ${mbps(total, writeSeconds).padStart(10)}   cp, then sha256sum ${mbps(total, cpSeconds + shaSeconds).padStart(10)}   ratio ${((cpSeconds + shaSeconds) / writeSeconds).toFixed(2)}`,
    );
    console.log(
      `read+verify         tsbuild ${mbps(total, readSeconds).padStart(10)}   sha256sum ${mbps(total, shaSeconds).padStart(10)}   ratio (tsbuild/peer throughput) ${(shaSeconds / readSeconds).toFixed(2)}`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
