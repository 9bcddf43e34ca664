import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Digest } from '../../oci/index.js';
import { S3Driver, SharedClaims, SharedIngestStore, Store, type GcReport, type S3DriverOptions } from '../../store/index.js';
import { ManifestCache } from './manifest-cache.js';
import type { ManifestService, Page, Registry, Repository, StoredManifest, TagService } from './types.js';

export interface ScaleoutOptions {
  /** The bucket every replica shares (store/driver/s3-driver.ts). */
  s3: S3DriverOptions;
  /** redis://host:port[/db] every replica shares: upload sessions, tag cache, locks, invalidations. */
  redisUrl: string;
  /** This replica's local directory (snapshots, temp files): nothing in it is needed by other replicas. */
  root: string;
}

/** How long a tag → digest filled from S3 on a miss is trusted (bounds a fill racing with a delete). */
const FILLED_TAG_SECONDS = 30;
/** A lock is held at most this long (a replica killed while holding one does not block the tag for longer). */
const LOCK_MS = 10_000;
const LOCK_WAIT_MS = 15_000;
/** Manifests by digest are kept this long in each replica's memory; deletes also reach every replica at once through Redis pub/sub. */
const MANIFEST_TTL_SECONDS = 60;

/** A Redis command unanswered this long fails (Redis answers in well under a millisecond when it is up). */
const COMMAND_TIMEOUT_MS = 3000;
/** A message on `<prefix>invalidate` that drops every replica's whole manifest cache. */
const ALL = '*';
/** Beyond this many manifests unlinked at once, one ALL message replaces a message each. */
const MAX_INVALIDATIONS = 1000;

const UNLOCK_SCRIPT = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

/**
 * A connection to the shared Redis. While Redis is unreachable, commands fail at once (no offline queue)
 * and a stalled Redis fails them after COMMAND_TIMEOUT_MS, so a request answers 503 UNAVAILABLE promptly
 * (registry/repository/errors.ts) and reads fall back to S3 where they can; the client reconnects by itself.
 */
function redisClient(url: string): Redis {
  const client = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    connectTimeout: 5000,
    commandTimeout: COMMAND_TIMEOUT_MS,
  });
  // Errors surface on the commands; the client reconnects by itself.
  client.on('error', () => undefined);
  return client;
}

/** The pieces a replica shares with the others; close() releases its connections. */
export interface Scaleout {
  store: Store;
  driver: S3Driver;
  redis: Redis;
  /** Redis key prefix of this bucket and root: several registries may share one Redis. */
  prefix: string;
  /** The registry services over the shared store, with the shared tag cache (SharedCacheRegistry). */
  registry(local: Registry): Registry;
  /** Tells every replica what a garbage collection (any replica's, or the CLI's) unlinked, so none serves it from memory. */
  collected(report: GcReport): Promise<void>;
  close(): Promise<void>;
}

/**
 * Opens a replica's shared state: the store on S3 with its upload sessions in Redis. Throws a one-line
 * error naming the endpoint when S3 or Redis does not answer.
 */
export async function openScaleout(options: ScaleoutOptions): Promise<Scaleout> {
  const driver = new S3Driver(options.s3);
  await driver.check();
  const redis = redisClient(options.redisUrl);
  const subscriber = redisClient(options.redisUrl);
  try {
    await redis.connect();
    await subscriber.connect();
  } catch (e) {
    redis.disconnect();
    subscriber.disconnect();
    driver.client.destroy();
    throw new Error(`redis at ${options.redisUrl} does not answer: ${(e as Error).message}`);
  }
  const prefix = `tsbuild:${driver.bucket}/${options.s3.rootDirectory ?? ''}:`;
  // Garbage collection across replicas: its lock, claims and the writers' confirmations live in Redis.
  const claims = new SharedClaims(driver, redis, prefix);
  const store = await Store.open(options.root, { driver, ingests: () => new SharedIngestStore(driver, redis, prefix, claims), claims: () => claims });
  const caches: SharedCacheRegistry[] = [];
  await subscriber.subscribe(`${prefix}invalidate`);
  subscriber.on('message', (_channel: string, message: string) => {
    if (message === ALL) {
      for (const c of caches) c.dropAllLocal();
      return;
    }
    const [name, digest] = message.split(' ');
    for (const c of caches) c.dropLocal(name!, digest!);
  });
  return {
    store,
    driver,
    redis,
    prefix,
    registry(local: Registry) {
      const cached = new SharedCacheRegistry(local, redis, prefix, driver);
      caches.push(cached);
      return cached;
    },
    async collected(report: GcReport) {
      const unlinked = report.manifestsDeleted;
      if (unlinked.length === 0) return;
      const channel = `${prefix}invalidate`;
      if (unlinked.length > MAX_INVALIDATIONS) await redis.publish(channel, ALL);
      else await Promise.all(unlinked.map((m) => redis.publish(channel, `${m.repository} ${m.digest}`)));
    },
    async close() {
      for (const c of caches) c.close();
      subscriber.disconnect();
      await redis.quit().catch(() => redis.disconnect());
      driver.client.destroy();
    },
  };
}

/**
 * The registry's caches and write serialization across replicas (distribution: its redis blob-descriptor
 * cache; tags there are read from storage each time). Tag → digest lives in Redis (`<prefix>t:<repo>:<tag>`):
 * written on every tag push and dropped on every tag or manifest delete, under a per-repository Redis
 * lock, so replicas answer a tag with one Redis GET and agree at once after a push. Manifests by digest
 * are immutable bytes, kept in each replica's memory; a delete is published on `<prefix>invalidate`.
 */
export class SharedCacheRegistry implements Registry {
  private readonly manifests = new ManifestCache(MANIFEST_TTL_SECONDS);

  constructor(
    private readonly inner: Registry,
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly driver: S3Driver,
  ) {}

  get location(): string {
    return this.driver.location;
  }

  dropLocal(name: string, digest: string): void {
    this.manifests.dropManifest(name, digest);
  }

  dropAllLocal(): void {
    this.manifests.clear();
  }

  close(): void {
    this.manifests.close();
  }

  private tagKey(name: string, tag: string): string {
    return `${this.prefix}t:${name}:${tag}`;
  }

  private tagSet(name: string): string {
    return `${this.prefix}ts:${name}`;
  }

  /** Runs `op` holding the repository's tag lock (SET NX PX; released only by its holder). */
  private async locked<T>(name: string, op: () => Promise<T>): Promise<T> {
    const key = `${this.prefix}lock:${name}`;
    const token = randomUUID();
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (let wait = 2; ; wait = Math.min(wait * 2, 50)) {
      if ((await this.redis.set(key, token, 'PX', LOCK_MS, 'NX')) === 'OK') break;
      if (Date.now() > deadline) throw new Error(`repository ${name}: its tag lock in Redis stayed taken for ${LOCK_WAIT_MS / 1000} s`);
      await new Promise((r) => setTimeout(r, wait));
    }
    try {
      return await op();
    } finally {
      await this.redis.eval(UNLOCK_SCRIPT, 1, key, token).catch(() => undefined);
    }
  }

  repository(name: string, namespace?: string): Repository {
    const inner = this.inner.repository(name, namespace);
    const self = this;
    const local = this.manifests;
    const manifests: ManifestService = {
      async get(digest: Digest): Promise<StoredManifest | undefined> {
        const hit = local.manifest(name, digest);
        if (hit) return hit;
        const found = await inner.manifests.get(digest);
        if (found) local.setManifest(name, found);
        return found;
      },
      async put(bytes, contentType, options) {
        const put = () => inner.manifests.put(bytes, contentType, options);
        const result =
          options.tag === undefined
            ? await put()
            : await self.locked(name, async () => {
                const r = await put();
                await self.redis.multi().set(self.tagKey(name, options.tag!), r.digest).sadd(self.tagSet(name), options.tag!).exec();
                return r;
              });
        local.setManifest(name, { digest: result.digest, mediaType: result.mediaType, bytes });
        return result;
      },
      async delete(digest: Digest): Promise<boolean> {
        const had = await self.locked(name, async () => {
          const deleted = await inner.manifests.delete(digest);
          // Tags pointing at it went with it in storage: drop every cached tag of the repository.
          const tags = await self.redis.smembers(self.tagSet(name));
          const m = self.redis.multi().del(self.tagSet(name));
          for (const t of tags) m.del(self.tagKey(name, t));
          await m.exec();
          return deleted;
        });
        local.dropManifest(name, digest);
        await self.redis.publish(`${self.prefix}invalidate`, `${name} ${digest}`);
        return had;
      },
    };
    const tags: TagService = {
      async resolve(tag: string): Promise<Digest | undefined> {
        let hit: string | null;
        try {
          hit = await self.redis.get(self.tagKey(name, tag));
        } catch {
          // Redis unreachable: the bucket has every tag (the cache only speeds it up); pulls go on.
          return inner.tags.resolve(tag);
        }
        if (hit) return hit as Digest;
        const found = await inner.tags.resolve(tag);
        if (found) {
          await self.redis
            .multi()
            .set(self.tagKey(name, tag), found, 'EX', FILLED_TAG_SECONDS, 'NX')
            .sadd(self.tagSet(name), tag)
            .exec()
            .catch(() => undefined);
        }
        return found;
      },
      list: (page: Page) => inner.tags.list(page),
      async delete(tag: string): Promise<boolean> {
        return self.locked(name, async () => {
          const had = await inner.tags.delete(tag);
          await self.redis.multi().del(self.tagKey(name, tag)).srem(self.tagSet(name), tag).exec();
          return had;
        });
      },
    };
    return { name, blobs: inner.blobs, manifests, tags, referrers: inner.referrers };
  }

  catalog(page: Page) {
    return this.inner.catalog(page);
  }

  async checkHealth(): Promise<string | undefined> {
    await this.driver.check();
    try {
      await this.redis.ping();
      return undefined;
    } catch (e) {
      return `redis does not answer (${(e as Error).message}): pulls are served from the bucket, pushes fail until it is back`;
    }
  }

  uploadSessionCount(): Promise<number> {
    return this.inner.uploadSessionCount();
  }

  expireUploads(maxIdleMs: number): Promise<string[]> {
    return this.inner.expireUploads(maxIdleMs);
  }
}
