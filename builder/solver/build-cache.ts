import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { Descriptor, DiffID, Digest } from '../../oci/index.js';
import { tempName, type Store } from '../../store/index.js';

/** What a cached step produced. */
export interface CacheRecord {
  layer?: { descriptor: Descriptor; diffID: DiffID };
  emptyLayer: boolean;
  /** When the step ran (its history time). */
  created?: string;
}

/** Hashes the parts of a cache key (each part length-prefixed, so parts cannot run into each other). */
export function cacheKey(...parts: string[]): Digest {
  const h = createHash('sha256');
  for (const p of parts) h.update(`${Buffer.byteLength(p)}:${p}\n`);
  return `sha256:${h.digest('hex')}` as Digest;
}

/**
 * The build cache index: step key → the layer it produced, under `<root>/cache/build/`. A record whose
 * layer blob has gone from the store counts as a miss.
 */
export class BuildCache {
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

  async get(key: Digest): Promise<CacheRecord | undefined> {
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
}
