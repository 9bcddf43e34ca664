import { mirrorStatus, type MirrorStatus } from '../../registry/index.js';
import { type Command, stringOption, UsageError } from '../command.js';
import { formatAge, formatSize, table } from '../format.js';
import { configuredUpstreams, mirrorStore, registryConfig, storeFlags, storeHelp } from '../mirror-options.js';

function render(s: MirrorStatus): string {
  const out: string[] = [];
  if (s.upstreams.length === 0) out.push('No upstream is mirrored here (pass --config or --mirror REGISTRY=URL to name them).\n');
  else {
    const rows = [['UPSTREAM', 'URL', 'HITS', 'MISSES', 'COALESCED', 'STALE', 'ERRORS', 'FROM UPSTREAM', 'SAVED']];
    for (const u of [...s.upstreams, ...(s.upstreams.length > 1 ? [{ registry: 'total', url: '', ...s.totals }] : [])]) {
      rows.push([
        u.registry,
        u.url ?? '(not configured)',
        String(u.hits),
        String(u.misses),
        String(u.coalesced),
        String(u.stale),
        String(u.upstreamErrors),
        formatSize(u.upstreamBytes),
        formatSize(u.bytesServedFromCache),
      ]);
    }
    out.push(table(rows));
  }
  const limit = s.cache.maxBytes !== undefined ? ` of ${formatSize(s.cache.maxBytes)} (mirror.max-size)` : '';
  out.push(`Cache: ${formatSize(s.cache.bytes)}${limit} in ${s.cache.blobs} blobs; ${s.cache.images} images in ${s.cache.repositories} repositories\n`);
  if (s.pins.length === 0) out.push('Pins: none\n');
  else {
    out.push('Pins:\n');
    for (const p of s.pins) out.push(`  ${p.reference}${p.cached ? '' : ' (not cached)'}\n`);
  }
  out.push(`Counters since ${s.counters.since}, last written ${formatAge(s.counters.updated)} (a running registry writes its own every 10 s)\n`);
  return out.join('');
}

export const mirrorStatusCommand: Command = {
  name: 'status',
  summary: "Show the mirror's upstreams, counters (hits, misses, bytes from upstream and saved), cache size and pins",
  usage: 'mirror status [--config FILE] [--mirror REG=URL]... [--format json]',
  help: [
    "  --mirror REG=URL     an upstream to show (adds to the config's mirrors:); repeatable",
    '  --format json        one JSON document (bytes as numbers) instead of the table',
    ...storeHelp,
    '',
    'Counters add up every process that served or filled this store (registries, syncs), across restarts.',
  ].join('\n'),
  options: { ...storeFlags, mirror: { type: 'string', multiple: true }, format: { type: 'string' } },
  async run(ctx) {
    if (ctx.positionals.length > 0) throw new UsageError(`unexpected argument "${ctx.positionals[0]}" (see 'tsbuild mirror status --help')`);
    const format = stringOption(ctx, 'format');
    if (format !== undefined && format !== 'json') throw new UsageError(`--format must be json, not "${format}"`);
    const config = registryConfig(ctx);
    const upstreams = configuredUpstreams(ctx, config.config).map((u) => ({ registry: u.registry, url: u.url }));
    const store = await mirrorStore(ctx, config);
    const status = await mirrorStatus(store, upstreams, config.config.mirror['max-size']);
    ctx.stdout.write(format === 'json' ? `${JSON.stringify(status, null, 2)}\n` : render(status));
  },
};
