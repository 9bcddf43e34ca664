/**
 * Image document parsing speed: oci/'s parseImageDocument (Go's reading rules, every key and number
 * literal kept) against JSON.parse (which checks nothing) on manifests of 1, 100 and 1,000 layers and an
 * index of 50 platforms, in one run. Target: a 100-layer manifest well under a millisecond.
 */
import { digestOf, MediaType, parseImageDocument } from '../oci/index.js';

function manifest(layers: number): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: digestOf('config'), size: 1234 },
      layers: Array.from({ length: layers }, (_, i) => ({
        mediaType: MediaType.ociLayerGzip,
        digest: digestOf(`layer ${i}`),
        size: 1_000_000 + i,
        annotations: { 'org.opencontainers.image.title': `layer-${i}.tar.gz` },
      })),
      annotations: { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' },
    }),
  );
}

function index(platforms: number): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests: Array.from({ length: platforms }, (_, i) => ({
        mediaType: MediaType.ociManifest,
        digest: digestOf(`m ${i}`),
        size: 500 + i,
        platform: { architecture: `arch${i}`, os: 'linux', variant: 'v8' },
      })),
    }),
  );
}

/** Median microseconds per call over rounds of `n` calls. */
function micros(n: number, fn: () => unknown): number {
  for (let i = 0; i < n; i++) fn();
  const rounds: number[] = [];
  for (let r = 0; r < 15; r++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn();
    rounds.push(Number(process.hrtime.bigint() - start) / 1e3 / n);
  }
  rounds.sort((a, b) => a - b);
  return rounds[Math.floor(rounds.length / 2)]!;
}

export async function run(): Promise<void> {
  const docs: [string, Buffer, number][] = [
    ['manifest, 1 layer', manifest(1), 2000],
    ['manifest, 100 layers', manifest(100), 200],
    ['manifest, 1000 layers', manifest(1000), 20],
    ['index, 50 platforms', index(50), 400],
  ];
  console.log(`${'document'.padEnd(24)} ${'bytes'.padStart(8)} ${'parseImageDocument'.padStart(20)} ${'JSON.parse'.padStart(12)}  ratio`);
  for (const [name, bytes, n] of docs) {
    const ours = micros(n, () => parseImageDocument(bytes));
    const peer = micros(n, () => JSON.parse(bytes.toString('utf8')));
    console.log(
      `${name.padEnd(24)} ${String(bytes.length).padStart(8)} ${`${ours.toFixed(1)} µs`.padStart(20)} ${`${peer.toFixed(1)} µs`.padStart(12)}  ${(ours / peer).toFixed(2)}×`,
    );
  }
}
