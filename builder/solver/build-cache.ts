import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { Digest } from '../../oci/index.js';
import { tempName, type Store } from '../../store/index.js';
import { restoreCacheMount, type CacheRecord, type ImportedCache } from '../cache/index.js';

export type { CacheRecord } from '../cache/index.js';

/** Hashes the parts of a cache key (each part length-prefixed, so parts cannot run into each other). */
export function cacheKey(...parts: string[]): Digest {
  const h = createHash('sha256');
  for (const p of parts) h.update(`${Buffer.byteLength(p)}:${p}\n`);
  return `sha256:${h.digest('hex')}` as Digest;
}

/**
 * What an image stands for in cache keys (FROM, COPY --from, RUN --mount from an image): its config
 * digest, the image id. Not the manifest digest: the same image re-packaged (docker push re-encodes the
 * manifest, a registry adds annotations, another media type) is the same filesystem and config, and a
 * --cache-from made against one packaging must hit for the other, as BuildKit keys an image source by its
 * config (cacheKeyFromConfig). The config names the platform, so platforms stay apart.
 */
export function imageCacheKey(image: { manifest: { config: { digest: Digest } } }): Digest {
  return image.manifest.config.digest;
}

/**
 * The shared dir of `RUN --mount=type=cache,id=ID` under `<root>/cache`, as builder/exec/mounts.ts names
 * it (sha256 of the id, first 32 hex; `private` sharing adds `-N` to copies in use).
 */
export function cacheMountDir(cacheRoot: string, id: string): string {
  return join(cacheRoot, createHash('sha256').update(id).digest('hex').slice(0, 32));
}

/**
 * The build cache: step key → the layer it produced, one JSON file per key under `<root>/cache/build/`
 * (record format: builder/cache/format.ts). A record whose layer blob has gone from the store counts as a
 * miss. On a local miss the imported caches (`--cache-from`) are asked in order; a hit there fetches the
 * layer and becomes a local record. Every record the build used or made is remembered for `--cache-to`.
 */
export class BuildCache {
  /** `--cache-from` sources, asked in order after the local cache. */
  readonly imported: ImportedCache[] = [];
  /** Every record this build used or made, by key, in the order the steps finished (mode=max). */
  readonly seen = new Map<Digest, CacheRecord>();
  /** Cache mount id → its dir on this machine, for every mount a RUN of this build used. */
  readonly mounts = new Map<string, string>();
  private readonly restored = new Map<string, Promise<boolean>>();
  /** Where warnings go (an imported layer that cannot be fetched is a miss, not a failure). */
  warn: (message: string) => void = () => undefined;

  private constructor(
    private readonly dir: string,
    private readonly store: Store,
  ) {}

  static async open(store: Store): Promise<BuildCache> {
    const dir = join(await store.localDir('cache'), 'build');
    await fs.mkdir(dir, { recursive: true });
    return new BuildCache(dir, store);
  }

  private file(key: Digest): string {
    return join(this.dir, key.slice(7));
  }

  /** The record for `key`: local, else from an imported cache (its layer fetched into the store). */
  async get(key: Digest): Promise<CacheRecord | undefined> {
    const local = await this.getLocal(key);
    if (local) return local;
    for (const source of this.imported) {
      const hit = source.lookup(key);
      if (!hit) continue;
      try {
        const record: CacheRecord = {
          emptyLayer: !hit.layer,
          ...(hit.layer ? { layer: await source.materialize(this.store, hit.layer) } : {}),
          ...(hit.created ? { created: hit.created } : {}),
        };
        await this.put(key, record);
        return record;
      } catch (e) {
        this.warn(
          `cache ${source.label}: layer ${hit.layer?.descriptor.digest ?? ''} cannot be fetched (${(e as Error).message.split('\n')[0]}); building the step`,
        );
      }
    }
    return undefined;
  }

  private async getLocal(key: Digest): Promise<CacheRecord | undefined> {
    let record: CacheRecord;
    try {
      record = JSON.parse(await fs.readFile(this.file(key), 'utf8')) as CacheRecord;
    } catch {
      return undefined;
    }
    if (record.layer && !(await this.store.blobs.has(record.layer.descriptor.digest))) return undefined;
    return record;
  }

  async put(key: Digest, record: CacheRecord): Promise<void> {
    const path = this.file(key);
    const tmp = tempName(path);
    await fs.writeFile(tmp, JSON.stringify(record));
    await fs.rename(tmp, path);
  }

  /** Notes a record the build used or made (for `--cache-to`). */
  used(key: Digest, record: CacheRecord): void {
    this.seen.delete(key);
    this.seen.set(key, record);
  }

  /**
   * Before a RUN uses cache mount `id` (at `dir`): remembers it for export and, the first time in this
   * build, fills the dir from an imported cache when this machine has never used it.
   */
  async useMount(id: string, dir: string): Promise<void> {
    this.mounts.set(id, dir);
    if (!this.imported.length) return;
    let run = this.restored.get(id);
    if (!run) {
      run = restoreCacheMount(this.store, this.imported, id, dir).catch((e: Error) => {
        this.warn(`cache mount ${id} cannot be restored from the imported cache: ${e.message.split('\n')[0]}`);
        return false;
      });
      this.restored.set(id, run);
    }
    await run;
  }
}
