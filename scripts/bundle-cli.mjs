// Bundles the compiled CLI (dist/cli/main.js and what it imports) into a few files in dist/cli/, replacing
// tsc's main.js. Why: Node's ESM loader costs ~0.5 ms per module (resolve, read, link), and a build that
// is not a no-op loads ~140 of ours; one bundle with its lazily imported parts split into chunks made a
// one-file rebuild ~19% faster (0.45 vs 0.55 s median, `farm-bench --vs`). tsc's per-module output stays
// in dist/ for the tests that import modules; the `tsbuild` command runs the bundle.
//
// Run after `tsc -p .` (npm run build does both). Packages stay in node_modules (--packages=external).
// Paths resolved from import.meta.url keep working because every output file sits in dist/cli/, as
// main.js does: ../../package.json, and ./hash-thread.js (bundled here as its own entry).
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const dist = fileURLToPath(new URL('../dist/', import.meta.url));
const cli = join(dist, 'cli');
const out = mkdtempSync(join(dist, '.bundle-'));
try {
  await build({
    entryPoints: { main: join(cli, 'main.js'), 'hash-thread': join(dist, 'store', 'hash-thread.js') },
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    outdir: out,
    chunkNames: 'chunk-[hash]',
    // read by Node only under --debug (process.setSourceMapsEnabled), through tsc's maps to the .ts sources
    sourcemap: 'linked',
    logLevel: 'warning',
  });
  for (const name of readdirSync(cli)) if (/^(chunk-[A-Z0-9]+|hash-thread)\.js(\.map)?$/.test(name)) rmSync(join(cli, name));
  for (const name of readdirSync(out)) renameSync(join(out, name), join(cli, name));
  chmodSync(join(cli, 'main.js'), 0o755);
  // a file named relative to a module's URL must be where the bundle's files are (not where tsc's were)
  for (const name of readdirSync(cli)) {
    if (!/^(main|hash-thread|chunk-[A-Z0-9]+)\.js$/.test(name)) continue;
    for (const m of readFileSync(join(cli, name), 'utf8').matchAll(/new URL\("([^"]+)", import\.meta\.url\)/g)) {
      if (!existsSync(fileURLToPath(new URL(m[1], `file://${join(cli, name)}`)))) throw new Error(`bundle-cli: ${name} names ${m[1]}, which is not there`);
    }
  }
} finally {
  rmSync(out, { recursive: true, force: true });
}
