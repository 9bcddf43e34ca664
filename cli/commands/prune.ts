import { createInterface } from 'node:readline';
import { byteSize } from '../../config/index.js';
import { pruneLocal } from '../../store/index.js';
import { type Command, listOption, stringOption, UsageError } from '../command.js';
import { formatSize } from '../format.js';
import { openStore } from '../open-store.js';
import { durationFlag } from './registry-gc.js';

/** docker's `--filter until=24h` (the only filter prune takes here) → ms. */
function untilFilter(filters: string[]): number | undefined {
  let until: number | undefined;
  for (const f of filters) {
    const eq = f.indexOf('=');
    const key = f.slice(0, eq);
    if (eq <= 0 || key !== 'until') throw new UsageError(`--filter "${f}" is not supported: use --filter until=DURATION (e.g. until=24h)`);
    until = durationFlag(f.slice(eq + 1), '--filter until');
  }
  return until;
}

/** Asks docker's question on stdin; true for y/Y. */
async function confirm(ctx: { stderr: NodeJS.WritableStream }, what: string[]): Promise<boolean> {
  ctx.stderr.write(`WARNING! This will remove:\n${what.map((w) => `  - ${w}\n`).join('')}\nAre you sure you want to continue? [y/N] `);
  const rl = createInterface({ input: process.stdin });
  const answer = await new Promise<string>((done) => {
    rl.once('line', done);
    rl.once('close', () => done(''));
  });
  rl.close();
  return /^y(es)?$/i.test(answer.trim());
}

/**
 * `tsbuild prune`: docker's `system prune` (+ `builder prune --keep-storage`) for the store: unused build
 * cache and blobs nothing holds; `--all` also images without a name and all build cache. Output as docker's.
 */
export const pruneCommand: Command = {
  name: 'prune',
  summary: 'Remove unused build cache and unreferenced content (-a: also untagged images and all build cache)',
  usage: 'prune [-a] [--keep-storage SIZE] [--filter until=DURATION] [-f]',
  help: [
    '  -a, --all                images without a name and all build cache too',
    '  --keep-storage SIZE      keep this much build cache (oldest goes first), e.g. 10GB',
    '  --filter until=DURATION  only what is older, e.g. until=24h',
    '  -f, --force              do not ask for confirmation',
    '',
    'Named images, registry repositories and mirror pins stay. Blobs are deleted online (store/gc.ts): a',
    'build, push or pull under way keeps what it wrote.',
  ].join('\n'),
  options: {
    all: { type: 'boolean', short: 'a' },
    'keep-storage': { type: 'string' },
    filter: { type: 'string', multiple: true },
    force: { type: 'boolean', short: 'f' },
  },
  async run(ctx) {
    if (ctx.positionals.length > 0) throw new UsageError(`unexpected argument "${ctx.positionals[0]}" (see 'tsbuild prune --help')`);
    const untilMs = untilFilter(listOption(ctx, 'filter'));
    const keep = stringOption(ctx, 'keep-storage');
    let keepStorage: number | undefined;
    if (keep !== undefined) {
      const parsed = keep.trim() === '0' ? { success: true as const, data: 0 } : byteSize.safeParse(keep);
      if (!parsed.success) throw new UsageError(`--keep-storage "${keep}" is not a size (use e.g. 10GB, 512MB)`);
      keepStorage = parsed.data;
    }
    const all = ctx.values.all === true;
    if (ctx.values.force !== true) {
      const what = [all ? 'all images without a name' : 'unused build cache', ...(all ? ['all build cache'] : []), 'blobs nothing references'];
      if (!(await confirm(ctx, what))) return 1;
    }
    const store = await openStore(ctx);
    const report = await pruneLocal(store, { all, ...(untilMs !== undefined ? { untilMs } : {}), ...(keepStorage !== undefined ? { keepStorage } : {}) });
    if (report.buildRunning) ctx.stderr.write('tsbuild: a build is running: its build cache and unpacked layers were kept\n');
    if (report.untaggedImages > 0) ctx.stdout.write(`Deleted Images: ${report.untaggedImages} without a name\n\n`);
    if (report.cacheRecords + report.snapshots > 0 || report.cacheDirBytes > 0) {
      ctx.stdout.write(
        `Deleted build cache objects: ${report.cacheRecords} records, ${report.snapshots} unpacked layers (${formatSize(report.snapshotBytes + report.cacheDirBytes)})\n\n`,
      );
    }
    if (report.gc.blobsDeleted > 0) ctx.stdout.write(`Deleted blobs: ${report.gc.blobsDeleted} (${formatSize(report.gc.bytesReclaimed)})\n\n`);
    ctx.stdout.write(`Total reclaimed space: ${formatSize(report.bytesReclaimed)}\n`);
  },
};
