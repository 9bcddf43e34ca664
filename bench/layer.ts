/**
 * Export speed of a layer: commitUpperDir over a 64 MiB upper dir (2,048 small files + one 32 MiB file,
 * half compressible text, half random bytes) against `tar -czf` of the same dir, in the same run;
 * then unpacking that layer against `tar -xzf`. Each figure is the best of three rounds.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { commitUpperDir, unpackLayer } from '../builder/snapshot/index.js';
import { Store } from '../store/index.js';
import { mbps, row, time, timeCommand } from './_measure.js';

const MiB = 1024 * 1024;
const ROUNDS = 3;

/** Best of a few rounds: the machine is shared, the minimum is the least disturbed measurement. */
async function best(measure: () => Promise<number>): Promise<number> {
  let min = Infinity;
  for (let i = 0; i < ROUNDS; i++) min = Math.min(min, await measure());
  return min;
}

function mixed(size: number, seed: number): Buffer {
  const words = ['layer', 'overlay', 'snapshot', 'digest', 'tar', 'gzip', 'runc', 'mount', 'build', 'image'];
  const text = Buffer.alloc(size / 2);
  let pos = 0;
  for (let i = seed; pos < text.length; i++) pos += text.write(`${words[(i * 7) % words.length]}-${i % 977} `, pos);
  return Buffer.concat([text, randomBytes(size / 2)]);
}

export async function run(): Promise<void> {
  const base = mkdtempSync(join(process.env.TSBUILD_BENCH_TMP ?? tmpdir(), 'tsbuild-bench-layer-'));
  try {
    const upper = join(base, 'upper');
    for (let d = 0; d < 32; d++) {
      mkdirSync(join(upper, 'usr/share/data', `d${d}`), { recursive: true });
      for (let f = 0; f < 64; f++) writeFileSync(join(upper, 'usr/share/data', `d${d}`, `f${f}.txt`), mixed(16 * 1024, d * 64 + f));
    }
    writeFileSync(join(upper, 'usr/share/big.bin'), mixed(32 * MiB, 1));
    const total = 64 * MiB;
    const store = await Store.open(join(base, 'store'));
    const results: Array<[string, number, string]> = [];
    for (const [label, options] of [
      ['tsbuild gzip -6', { compression: 'gzip' as const, gzipLevel: 6 }],
      ['tsbuild gzip -1', { compression: 'gzip' as const, gzipLevel: 1 }],
      ['tsbuild uncompressed', { compression: 'none' as const }],
    ] as const) {
      let size = 0;
      const seconds = await best(() =>
        time(async () => {
          const r = await commitUpperDir(store, { upper, lowers: [], sourceDateEpoch: 0, ...options });
          size = r.descriptor.size;
        }),
      );
      results.push([label, seconds, `${(size / MiB).toFixed(1)} MiB`]);
    }
    const tarSeconds = await best(async () => timeCommand('tar', ['--numeric-owner', '-czf', join(base, 'peer.tar.gz'), '-C', upper, '.']));
    const tarOnly = await best(async () => timeCommand('tar', ['--numeric-owner', '-cf', join(base, 'peer.tar'), '-C', upper, '.']));
    results.push(['tar -czf (peer)', tarSeconds, ''], ['tar -cf (peer)', tarOnly, '']);
    const widths = [24, 10, 12, 12];
    console.log(row(['export of 64 MiB', 'seconds', 'throughput', 'blob'], widths));
    for (const [label, seconds, size] of results) console.log(row([label, seconds.toFixed(2), mbps(total, seconds), size], widths));
    console.log(`ratio tsbuild gzip -6 / tar -czf: ${(results[0]![1] / tarSeconds).toFixed(2)}x time (lower is better)`);

    // and back: unpack the gzip -6 layer into a snapshot dir vs `tar -xzf` of the peer's archive
    const layer = await commitUpperDir(store, { upper, lowers: [], sourceDateEpoch: 0, compression: 'gzip', gzipLevel: 6 });
    let n = 0;
    const unpackSeconds = await best(async () => {
      const into = join(base, `unpacked-${n++}`);
      mkdirSync(into);
      return time(async () => unpackLayer(await store.blobs.read(layer.descriptor.digest), into));
    });
    const tarX = await best(async () => {
      const peerInto = join(base, `peer-unpacked-${n++}`);
      mkdirSync(peerInto);
      return timeCommand('tar', ['--numeric-owner', '-xzf', join(base, 'peer.tar.gz'), '-C', peerInto]);
    });
    console.log(row(['unpack of 64 MiB', 'seconds', 'throughput'], widths));
    console.log(row(['tsbuild unpackLayer', unpackSeconds.toFixed(2), mbps(total, unpackSeconds)], widths));
    console.log(row(['tar -xzf (peer)', tarX.toFixed(2), mbps(total, tarX)], widths));
    console.log(`ratio tsbuild unpack / tar -xzf: ${(unpackSeconds / tarX).toFixed(2)}x time (lower is better)`);
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}
