import { resolve, dirname } from 'node:path';
import { duration, loadConfigFile, registryConfigSchema, type RegistryConfig } from '../../config/index.js';
import type { ScaleoutOptions } from '../../registry/repository/scaleout.js';
import { runRegistryGc } from '../../registry/server/gc-report.js';
import { GcLockedError, Store, type GcOptions, type GcReport } from '../../store/index.js';
import { type Command, stringOption, UsageError } from '../command.js';
import { formatSize } from '../format.js';

/** `--grace-period 10m` → ms (UsageError naming the flag otherwise). */
export function durationFlag(value: string, flag: string): number {
  const parsed = duration.safeParse(value);
  if (!parsed.success) throw new UsageError(`${flag} "${value}" is not a duration (use e.g. 90s, 30m, 24h, 7d)`);
  return parsed.data;
}

/** The shared bucket and Redis of a config with `storage: {s3: …}` (replicas), else undefined; `root` is this process's local directory. */
export function scaleoutOptions(config: RegistryConfig, configFile: string | undefined, root: string): ScaleoutOptions | undefined {
  const s3 = config.storageS3;
  if (!s3) return undefined;
  if (!config.redis)
    throw new UsageError(`${configFile ?? 'the config'}: storage.s3 needs redis.url too (replicas share upload sessions, tags and GC through Redis)`);
  return {
    s3: {
      endpoint: s3.endpoint,
      bucket: s3.bucket,
      region: s3.region,
      rootDirectory: s3['root-directory'],
      forcePathStyle: s3['force-path-style'],
      accessKeyId: s3['access-key'],
      secretAccessKey: s3['secret-key'],
    },
    redisUrl: config.redis.url,
    root,
  };
}

/**
 * `tsbuild registry garbage-collect`: distribution's `registry garbage-collect [--dry-run] [--delete-untagged]`,
 * but safe while a registry serves the same store (store/gc.ts): nothing younger than the grace period
 * (default: the config's gc.grace-period, 1h) is collected, and pushes under way never lose a blob.
 */
export const garbageCollectCommand: Command = {
  name: 'garbage-collect',
  summary: 'Delete blobs no manifest, tag, local image, build cache record or pin holds (safe while the registry runs)',
  usage: 'registry garbage-collect [--config FILE | FILE] [--storage DIR] [--dry-run] [--delete-untagged] [--grace-period DURATION] [--wait DURATION]',
  help: [
    '  --config FILE, FILE        the registry YAML (storage: a directory, or s3 + redis shared with running replicas; gc.grace-period,',
    "                             gc.delete-untagged); distribution's form, the file as the argument, works too",
    "  --storage DIR              the store (default: the config's storage:, else the tsbuild root, --root)",
    '  -d, --dry-run              print what would be deleted; change nothing',
    '  -m, --delete-untagged      also unlink manifests no tag reaches (older than the grace period)',
    '  --grace-period DURATION    spare anything pushed, linked or written this recently (default 1h)',
    "  --wait DURATION            when another GC runs on the store (a registry's own gc.interval), wait for it this long",
    '                             (default 0: stop at once, saying who holds it)',
  ].join('\n'),
  options: {
    config: { type: 'string' },
    storage: { type: 'string' },
    'dry-run': { type: 'boolean', short: 'd' },
    'delete-untagged': { type: 'boolean', short: 'm' },
    'grace-period': { type: 'string' },
    wait: { type: 'string' },
  },
  async run(ctx) {
    const [positional, extra] = ctx.positionals;
    if (extra !== undefined || (positional !== undefined && stringOption(ctx, 'config') !== undefined)) {
      throw new UsageError(`unexpected argument "${extra ?? positional}" (see 'tsbuild registry garbage-collect --help')`);
    }
    const configFile = stringOption(ctx, 'config') ?? positional;
    const waitFlag = stringOption(ctx, 'wait');
    const waitMs = waitFlag !== undefined ? durationFlag(waitFlag, '--wait') : 0;
    const config = configFile ? loadConfigFile(registryConfigSchema, configFile) : undefined;
    const fromFile = typeof config?.storage === 'string' && configFile ? resolve(dirname(configFile), config.storage) : undefined;
    const local = resolve(stringOption(ctx, 'storage') ?? fromFile ?? ctx.root);
    // On S3 the store is the bucket, shared with the running replicas through Redis (its GC lock and claims).
    const shared = config ? scaleoutOptions(config, configFile, local) : undefined;
    const scaleout = shared ? await (await import('../../registry/repository/scaleout.js')).openScaleout(shared) : undefined;
    // no start-up sweep of the whole tree: the GC needs none, and it is most of the start on a large store
    const store = scaleout?.store ?? (await Store.open(local, { noSweep: true }));
    const grace = stringOption(ctx, 'grace-period');
    let report: Awaited<ReturnType<typeof runRegistryGc>>;
    const deadline = Date.now() + waitMs;
    let told = false;
    const collect = async (options: GcOptions): Promise<GcReport> => {
      for (;;) {
        try {
          return await runRegistryGc(store, options);
        } catch (e) {
          if (!(e instanceof GcLockedError)) throw e;
          if (waitMs === 0) throw new Error(`${e.message} (or pass --wait DURATION)`);
          if (Date.now() >= deadline) throw new Error(`another garbage collection is still running on this store (${e.owner}) after waiting ${waitFlag}`);
          if (!told) ctx.stderr.write(`another garbage collection is running on this store (${e.owner}): waiting up to ${waitFlag}\n`);
          told = true;
          await new Promise((r) => setTimeout(r, Math.min(1000, Math.max(0, deadline - Date.now()))));
        }
      }
    };
    try {
      report = await collect({
        graceMs: grace !== undefined ? durationFlag(grace, '--grace-period') : (config?.gc['grace-period'] ?? 3_600_000),
        deleteUntagged: ctx.values['delete-untagged'] === true || (config?.gc['delete-untagged'] ?? false),
        dryRun: ctx.values['dry-run'] === true,
        // a shared bucket holds none of this machine's local images or build cache
        registryOnly: scaleout !== undefined,
        // upload sessions abandoned longer than uploads.expire-after (default 24h) go too
        uploadExpiryMs: config?.uploads['expire-after'] ?? 24 * 3_600_000,
      });
      await scaleout?.collected(report);
    } finally {
      await scaleout?.close();
    }
    const verb = report.dryRun ? 'eligible for deletion' : 'deleted';
    for (const m of report.manifestsDeleted) ctx.stdout.write(`manifest ${verb}: ${m.repository}@${m.digest}\n`);
    for (const d of report.deletedDigests) ctx.stdout.write(`blob ${verb}: ${d}\n`);
    ctx.stdout.write(
      `${report.blobsMarked} blobs marked, ${report.blobsDeleted} blobs and ${report.manifestsDeleted.length} manifests ${verb}` +
        ` (${formatSize(report.bytesReclaimed)}) in ${report.repositories} repositories, ${(report.durationMs / 1000).toFixed(2)}s` +
        `${report.restoredFromCrash ? `; ${report.restoredFromCrash} blobs an interrupted GC had set aside were put back first` : ''}\n`,
    );
  },
};
