import { diskUsage, type UsageCategory } from '../../store/index.js';
import { type Command, UsageError } from '../command.js';
import { formatSize, table } from '../format.js';
import { openStore } from '../open-store.js';

function percent(part: number, whole: number): string {
  return whole > 0 ? ` (${Math.round((part / whole) * 100)}%)` : '';
}

/**
 * `tsbuild system df [-v] [--format json]`: docker's `system df` for the store (store/disk-usage.ts):
 * TYPE, TOTAL, ACTIVE, SIZE, RECLAIMABLE per category; each byte counted once, so SIZE adds up to the
 * store's `du -sb`. `--format json`: one object per category with exact bytes.
 */
const dfCommand: Command = {
  name: 'df',
  summary: 'Show disk usage: images, build cache, registry repositories, mirror cache',
  usage: 'system df [-v] [--format json]',
  help: '  -v, --verbose   also each image, cache record and repository\n  --format json    one JSON object per category (sizes in bytes)',
  options: { verbose: { type: 'boolean', short: 'v' }, format: { type: 'string' } },
  async run(ctx) {
    if (ctx.positionals.length > 0) throw new UsageError(`unexpected argument "${ctx.positionals[0]}" (see 'tsbuild system df --help')`);
    const format = ctx.values.format;
    if (format !== undefined && format !== 'json') throw new UsageError(`--format "${String(format)}" is not supported: use --format json`);
    const store = await openStore(ctx);
    const usage = await diskUsage(store, { verbose: ctx.values.verbose === true });
    if (format === 'json') {
      for (const c of usage.categories) {
        ctx.stdout.write(
          JSON.stringify({
            Type: c.type,
            TotalCount: c.total,
            Active: c.active,
            Size: c.size,
            Reclaimable: c.reclaimable,
            ...(c.items ? { Items: c.items } : {}),
          }) + '\n',
        );
      }
      return;
    }
    const row = (c: UsageCategory) => [
      c.type,
      String(c.total),
      String(c.active),
      formatSize(c.size),
      `${formatSize(c.reclaimable)}${percent(c.reclaimable, c.size)}`,
    ];
    ctx.stdout.write(table([['TYPE', 'TOTAL', 'ACTIVE', 'SIZE', 'RECLAIMABLE'], ...usage.categories.map(row)]));
    if (ctx.values.verbose === true) {
      for (const c of usage.categories) {
        if (!c.items?.length) continue;
        ctx.stdout.write(`\n${c.type} space usage:\n\n`);
        ctx.stdout.write(table([['NAME', 'SIZE', 'RECLAIMABLE'], ...c.items.map((i) => [i.name, formatSize(i.size), formatSize(i.reclaimable)])]));
      }
    }
  },
};

export const systemCommand: Command = {
  name: 'system',
  summary: 'Manage the store: disk usage (df)',
  usage: 'system df [-v]',
  subcommands: [dfCommand],
};
