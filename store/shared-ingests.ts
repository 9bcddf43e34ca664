import { Turns } from './turns.js';
import { createHash, randomUUID, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
// the AWS SDK loads with the first S3 driver (s3-driver.ts): commands that never use S3 start without it
import { s3 } from './driver/s3-driver.js';
import type { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import { Digester, digestAlgorithm, type Digest } from '../oci/index.js';
import { pumpInto } from './driver/pump.js';
import type { S3Driver } from './driver/s3-driver.js';
import type { ByteRange, FileWriter } from './driver/storage-driver.js';
import { DigestMismatchError, IngestNotFoundError, IngestOffsetError, IngestSupersededError, PathNotFoundError, SizeMismatchError } from './errors.js';
import { Ingest, IngestStore, type AppendOptions, type IngestCreateOptions } from './ingests.js';
import type { BlobClaims } from './gc-claims.js';
import { blobPath } from './layout.js';

/** Largest object one CopyObject may copy (S3 API); larger blobs are copied part by part. */
const MAX_COPY_BYTES = 5 * 1024 ** 3;
/** Part numbers are reserved from the session's counter in blocks (S3 allows 1..10000, gaps allowed). */
const PART_BLOCK = 8;
const MAX_PART_NUMBER = 10_000;
const ID_PATTERN = /^[A-Za-z0-9-]{8,64}$/;

/**
 * An upload session's state, one Redis hash per session (every field a string there). `version` grows
 * with every change; a change is written only if the version is still the one it started from (CAS_SCRIPT),
 * so of two replicas appending to the same session at once one wins and the other gets
 * IngestSupersededError, and nothing half-done is ever recorded.
 */
interface SessionState {
  version: number;
  /** Bytes received: the recorded parts plus the tail. */
  size: number;
  startedAt: string;
  /** ms since the epoch of the last change. */
  updatedAt: number;
  labels: Record<string, string>;
  /** The S3 multipart upload (at `ingest/<id>/data`), once the first full part was sent. */
  uploadId?: string | undefined;
  /** [partNumber, ETag], ascending: each ≥ the part size (≥ 5 MiB). */
  parts: [number, string][];
  /** Bytes after the parts, kept as an object of their own until a part's worth accumulates. */
  tailKey?: string | undefined;
  tailBytes: number;
  /**
   * sha256 of all `size` bytes, when the replica that received the last append had the hash of every byte
   * before it (OpenSSL states cannot be serialized; see SharedIngest). Absent: the commit reads the bytes back.
   */
  digest?: string | undefined;
  /** A commit took the session: appends are refused. */
  committing?: boolean | undefined;
  /** The multipart upload was completed (at `ingest/<id>/data`) by a commit that failed later: a retry starts from there. */
  completed?: boolean | undefined;
}

/** HSET the fields in ARGV[2..] only when `version` is ARGV[1]; 1 when written. */
const CAS_SCRIPT = `
local v = redis.call('HGET', KEYS[1], 'version')
if not v or v ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return 1`;

function encode(s: SessionState): string[] {
  return [
    'version',
    String(s.version),
    'size',
    String(s.size),
    'startedAt',
    s.startedAt,
    'updatedAt',
    String(s.updatedAt),
    'labels',
    JSON.stringify(s.labels),
    'uploadId',
    s.uploadId ?? '',
    'parts',
    JSON.stringify(s.parts),
    'tailKey',
    s.tailKey ?? '',
    'tailBytes',
    String(s.tailBytes),
    'digest',
    s.digest ?? '',
    'committing',
    s.committing ? '1' : '',
    'completed',
    s.completed ? '1' : '',
  ];
}

function decode(h: Record<string, string>): SessionState | undefined {
  if (h.version === undefined) return undefined;
  return {
    version: Number(h.version),
    size: Number(h.size),
    startedAt: h.startedAt ?? new Date(0).toISOString(),
    updatedAt: Number(h.updatedAt ?? 0),
    labels: JSON.parse(h.labels || '{}') as Record<string, string>,
    uploadId: h.uploadId || undefined,
    parts: JSON.parse(h.parts || '[]') as [number, string][],
    tailKey: h.tailKey || undefined,
    tailBytes: Number(h.tailBytes ?? 0),
    digest: h.digest || undefined,
    committing: h.committing === '1',
    completed: h.completed === '1',
  };
}

/**
 * OpenSSL hash states this process holds, by session id, with the version they cover. Bounded: a session
 * whose last append was here may be committed or abandoned on another replica, and nobody tells this one.
 */
const hashes = new LRUCache<string, { version: number; hash: Hash }>({ max: 4096, ttl: 3_600_000 });

/** The operation holding a session in this process (as Ingest's turns: a newer one aborts the older). */
const turns = new Turns();

/** Shared between the sessions of one store: the driver (its S3 client), Redis and the key prefix. */
interface Shared {
  driver: S3Driver;
  redis: Redis;
  /** Redis key prefix, e.g. `tsbuild:registry/root:`. */
  prefix: string;
  /** The store's GC claims: a commit confirms the digest before it trusts a copy already in place. */
  claims: BlobClaims;
}

/**
 * Where a session's bytes go while appends run (FileWriter for pumpInto): full parts to the multipart
 * upload, at most one part in memory, the rest into a new tail object at commit, then the state is
 * swapped in Redis if nobody changed it meanwhile.
 */
class SessionWriter implements FileWriter {
  readonly maxPending = 2;
  size: number;
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  private readonly newParts: [number, string][] = [];
  private uploadId: string | undefined;
  private starting?: Promise<string>;
  /** Reserved part numbers not used yet, and the chain that hands them out in order. */
  private reserved: number[] = [];
  private numbers: Promise<unknown> = Promise.resolve();
  private newTailKey?: string;

  constructor(
    private readonly ingest: SharedIngest,
    private readonly state: SessionState,
    firstBytes: Buffer | undefined,
    private readonly hash: Hash | undefined,
  ) {
    this.size = state.size;
    this.uploadId = state.uploadId;
    if (firstBytes && firstBytes.length > 0) {
      this.buffered.push(firstBytes);
      this.bufferedBytes = firstBytes.length;
    }
  }

  private get s(): Shared {
    return this.ingest.shared;
  }

  private multipart(): Promise<string> {
    if (this.uploadId) return Promise.resolve(this.uploadId);
    this.starting ??= this.s.driver.client
      .send(new (s3().CreateMultipartUploadCommand)({ Bucket: this.s.driver.bucket, Key: this.ingest.dataKey }))
      .then((out) => (this.uploadId = out.UploadId!));
    return this.starting;
  }

  private nextPartNumber(): Promise<number> {
    const got = this.numbers.then(async () => {
      if (this.reserved.length === 0) {
        const last = await this.s.redis.hincrby(this.ingest.key, 'nextPart', PART_BLOCK);
        if (last > MAX_PART_NUMBER) throw new Error(`upload ${this.ingest.id} has used all ${MAX_PART_NUMBER} S3 part numbers; start it over`);
        for (let n = last - PART_BLOCK + 1; n <= last; n++) this.reserved.push(n);
      }
      return this.reserved.shift()!;
    });
    this.numbers = got.catch(() => undefined);
    return got;
  }

  private async sendPart(body: Buffer): Promise<void> {
    const [uploadId, PartNumber] = await Promise.all([this.multipart(), this.nextPartNumber()]);
    const sent = await this.s.driver.client.send(
      new (s3().UploadPartCommand)({
        Bucket: this.s.driver.bucket,
        Key: this.ingest.dataKey,
        UploadId: uploadId,
        PartNumber,
        Body: body,
        ContentLength: body.length,
      }),
    );
    this.newParts.push([PartNumber, sent.ETag!]);
  }

  write(chunks: Buffer[], length: number): Promise<void> {
    for (const c of chunks) {
      this.hash?.update(c);
      this.buffered.push(c);
    }
    this.bufferedBytes += length;
    this.size += length;
    if (this.bufferedBytes < this.s.driver.partBytes) return Promise.resolve();
    const body = Buffer.concat(this.buffered, this.bufferedBytes);
    this.buffered = [];
    this.bufferedBytes = 0;
    return this.sendPart(body);
  }

  async commit(): Promise<number> {
    const { driver, redis } = this.s;
    const tail = Buffer.concat(this.buffered, this.bufferedBytes);
    if (tail.length > 0) {
      this.newTailKey = `ingest/${this.ingest.id}/tail-${this.state.version + 1}-${randomUUID().slice(0, 8)}`;
      await driver.putContent(this.newTailKey, tail);
    }
    const next: SessionState = {
      ...this.state,
      version: this.state.version + 1,
      size: this.size,
      updatedAt: Date.now(),
      uploadId: this.uploadId,
      parts: [...this.state.parts, ...this.newParts].sort((a, b) => a[0] - b[0]),
      tailKey: this.newTailKey,
      tailBytes: tail.length,
      digest: this.hash ? `sha256:${this.hash.copy().digest('hex')}` : undefined,
    };
    const written = (await redis.eval(CAS_SCRIPT, 1, this.ingest.key, String(this.state.version), ...encode(next))) as number;
    if (written !== 1) {
      await this.cancel();
      throw new IngestSupersededError(this.ingest.id);
    }
    if (this.hash) hashes.set(this.ingest.id, { version: next.version, hash: this.hash });
    // The old tail is in the new state's bytes (a part or the new tail): drop it.
    if (this.state.tailKey && this.state.tailKey !== this.newTailKey) void driver.deleteFile(this.state.tailKey).catch(() => undefined);
    return this.size;
  }

  async cancel(): Promise<void> {
    this.buffered = [];
    this.bufferedBytes = 0;
    if (this.newTailKey) await this.s.driver.deleteFile(this.newTailKey).catch(() => undefined);
    // Parts sent but not recorded stay in the multipart upload unlisted; Complete drops them (S3 API).
  }
}

/**
 * An upload session whose state lives in Redis and whose bytes live in S3, so every request of an upload
 * may land on a different replica (issue 16). Bytes arrive as S3 multipart parts of the driver's part size
 * (≥ 5 MiB, S3's minimum but for the last part); what is left at the end of a request is kept as a tail
 * object (not in memory) and goes into the next part. Offsets, the multipart upload id, part ETags and the
 * tail are in the Redis hash `<prefix>upload:<id>`; nothing depends on an S3 listing.
 *
 * Digests: Node's OpenSSL hashes (≈ 1.2 GB/s here) cannot be saved and restored, and hash-wasm's can but
 * hashes at ≈ 205 MB/s on this machine (measured: bench numbers in the README). So the replica that
 * receives an append hashes it with OpenSSL when it holds the hash of every earlier byte (always for the
 * first append, and a docker push is one PATCH), and records the digest-so-far; a commit uses it, or reads
 * the bytes back from S3 once and hashes them when the appends were spread over replicas.
 */
export class SharedIngest extends Ingest {
  readonly key: string;

  constructor(
    readonly shared: Shared,
    id: string,
    startedAt: Date,
    labels: Readonly<Record<string, string>>,
  ) {
    super(shared.driver, id, startedAt, labels);
    this.key = `${shared.prefix}upload:${id}`;
  }

  /** The S3 key of the multipart upload (and of the completed bytes before they become the blob). */
  get dataKey(): string {
    return this.shared.driver.key(`ingest/${this.id}/data`);
  }

  private async state(): Promise<SessionState> {
    const s = decode(await this.shared.redis.hgetall(this.key));
    if (!s) throw new IngestNotFoundError(this.id);
    return s;
  }

  override async size(): Promise<number> {
    return (await this.state()).size;
  }

  override async updatedAt(): Promise<Date> {
    return new Date((await this.state()).updatedAt);
  }

  /** Only a session whose bytes are all in its tail can be read while open (the mirror reads cold fetches). */
  override async read(range?: ByteRange): Promise<Readable> {
    const s = await this.state();
    if (s.uploadId) throw new Error(`upload ${this.id}: bytes sent as S3 parts cannot be read before the upload completes`);
    if (!s.tailKey) return (await import('node:stream')).Readable.from([]);
    return this.shared.driver.reader(s.tailKey, range);
  }

  private turn<T>(reason: Error, op: (signal: AbortSignal) => Promise<T>): Promise<T> {
    return turns.take(this.id, reason, op);
  }

  override append(source: Readable, options: AppendOptions = {}): Promise<number> {
    return this.turn(new IngestSupersededError(this.id), async (signal) => {
      const s = await this.state();
      if (s.committing) throw new IngestSupersededError(this.id);
      if (options.offset !== undefined && options.offset !== s.size) throw new IngestOffsetError(s.size, options.offset);
      const held = hashes.get(this.id);
      hashes.delete(this.id);
      const hash = s.size === 0 ? createHash('sha256') : held?.version === s.version ? held.hash : undefined;
      // The tail (< one part) is read back into this request's first part.
      const tail = s.tailKey ? await this.shared.driver.getContent(s.tailKey) : undefined;
      if (tail && tail.length !== s.tailBytes)
        throw new Error(`upload ${this.id}: its tail object holds ${tail.length} bytes, the session says ${s.tailBytes}`);
      const writer = new SessionWriter(this, s, tail, hash);
      return pumpInto(source, writer, { signal, idleMs: options.idleTimeoutMs });
    }).catch((e: unknown) => {
      if (!options.leaveSourceOpen) source.destroy();
      throw e;
    });
  }

  override commit(expected?: Digest, expectedSize?: number, alongside?: (digest: Digest) => Promise<void>): Promise<{ digest: Digest; size: number }> {
    return this.turn(new IngestSupersededError(this.id), async () => {
      const { driver, redis } = this.shared;
      const s = await this.state();
      // Take the session: appends still running anywhere fail their compare-and-set.
      const taken = (await redis.eval(CAS_SCRIPT, 1, this.key, String(s.version), 'version', String(s.version + 1), 'committing', '1')) as number;
      if (taken !== 1) throw new IngestSupersededError(this.id);
      try {
        const held = hashes.get(this.id);
        hashes.delete(this.id);
        const algorithm = expected ? digestAlgorithm(expected) : 'sha256';
        let digest: Digest | undefined =
          algorithm === 'sha256'
            ? ((s.digest as Digest | undefined) ?? (held?.version === s.version ? (`sha256:${held.hash.digest('hex')}` as Digest) : undefined))
            : undefined;
        let dataPath: string | undefined;
        let smallBytes: Buffer | undefined;
        if (!s.uploadId) {
          // Everything is in the tail (under one part): verify it and write the blob at its key directly.
          smallBytes = s.tailKey ? await driver.getContent(s.tailKey) : Buffer.alloc(0);
          if (!digest) {
            const d = new Digester(algorithm);
            d.update(smallBytes);
            digest = d.digest();
          }
        } else if (s.completed) {
          dataPath = `ingest/${this.id}/data`;
          if (!digest) digest = await this.readBack(dataPath, algorithm);
        } else {
          const parts = [...s.parts];
          if (s.tailKey && s.tailBytes > 0) {
            // The tail is the last part (the only one allowed under 5 MiB), copied server-side.
            const last = await redis.hincrby(this.key, 'nextPart', 1);
            const copied = await driver.client.send(
              new (s3().UploadPartCopyCommand)({
                Bucket: driver.bucket,
                Key: this.dataKey,
                UploadId: s.uploadId,
                PartNumber: last,
                CopySource: `${driver.bucket}/${driver.key(s.tailKey).split('/').map(encodeURIComponent).join('/')}`,
              }),
            );
            parts.push([last, copied.CopyPartResult!.ETag!]);
          }
          await driver.client.send(
            new (s3().CompleteMultipartUploadCommand)({
              Bucket: driver.bucket,
              Key: this.dataKey,
              UploadId: s.uploadId,
              MultipartUpload: { Parts: parts.map(([PartNumber, ETag]) => ({ PartNumber, ETag })) },
            }),
          );
          await redis.hset(this.key, 'completed', '1');
          dataPath = `ingest/${this.id}/data`;
          if (!digest) digest = await this.readBack(dataPath, algorithm);
        }
        if (expected && digest !== expected) {
          await this.removeAll(s);
          throw new DigestMismatchError(expected, digest);
        }
        if (expectedSize !== undefined && expectedSize !== s.size) {
          await this.removeAll(s);
          throw new SizeMismatchError(expectedSize, s.size);
        }
        // Confirmed first: a copy already in place that a garbage collection is deleting is waited out
        // (then missing: written again below), one it claimed is taken back, and none is claimed after.
        const existing = await this.shared.claims.confirm(digest, () => driver.stat(blobPath(digest!)).catch(() => undefined));
        if (existing?.size !== s.size) {
          if (smallBytes) await driver.putContent(blobPath(digest), smallBytes);
          else await this.copyInto(dataPath!, blobPath(digest), s.size);
        }
        const removed = this.removeAll(s, true);
        removed.catch(() => undefined);
        try {
          await alongside?.(digest);
        } finally {
          await removed;
        }
        return { digest, size: s.size };
      } catch (e) {
        // A storage failure (not a wrong digest: the session is gone then) leaves the session to a retried PUT.
        if (!(e instanceof DigestMismatchError || e instanceof SizeMismatchError)) {
          await redis.eval(CAS_SCRIPT, 1, this.key, String(s.version + 1), 'version', String(s.version + 2), 'committing', '').catch(() => undefined);
        }
        throw e;
      }
    });
  }

  /** Hashes the completed bytes, read back from S3 once (the appends were spread over replicas). */
  private async readBack(dataPath: string, algorithm: string): Promise<Digest> {
    const d = new Digester(algorithm);
    for await (const chunk of await this.shared.driver.reader(dataPath)) d.update(chunk as Buffer);
    return d.digest();
  }

  /** A server-side copy (CopyObject; part by part over 5 GiB): S3 has no rename. */
  private async copyInto(from: string, to: string, size: number): Promise<void> {
    const { driver } = this.shared;
    const source = `${driver.bucket}/${driver.key(from).split('/').map(encodeURIComponent).join('/')}`;
    if (size <= MAX_COPY_BYTES) {
      await driver.client.send(new (s3().CopyObjectCommand)({ Bucket: driver.bucket, Key: driver.key(to), CopySource: source }));
      return;
    }
    await driver.move(from, to);
  }

  override cancel(): Promise<void> {
    return this.turn(new IngestNotFoundError(this.id), async () => {
      const s = decode(await this.shared.redis.hgetall(this.key));
      if (!s) throw new IngestNotFoundError(this.id);
      await this.removeAll(s);
    });
  }

  /** Forgets the session: Redis first (no request finds it any more), then its objects. */
  private async removeAll(s: SessionState, completed = false): Promise<void> {
    const { driver, redis, prefix } = this.shared;
    hashes.delete(this.id);
    await redis.multi().del(this.key).srem(`${prefix}uploads`, this.id).exec();
    if (s.uploadId && !completed) {
      await driver.client
        .send(new (s3().AbortMultipartUploadCommand)({ Bucket: driver.bucket, Key: this.dataKey, UploadId: s.uploadId }))
        .catch(() => undefined);
    }
    // Exact keys, no listing: the data (once completed) and the tail are all a session leaves; tails of
    // appends that lost their compare-and-set were deleted by them.
    await Promise.all([driver.deleteFile(`ingest/${this.id}/data`), s.tailKey ? driver.deleteFile(s.tailKey) : undefined]);
  }
}

/** Upload sessions in Redis + S3 for a Store on the S3 driver (see SharedIngest). */
export class SharedIngestStore extends IngestStore {
  readonly shared: Shared;

  constructor(driver: S3Driver, redis: Redis, prefix: string, claims: BlobClaims) {
    super(driver);
    this.shared = { driver, redis, prefix, claims };
  }

  override async create(options: IngestCreateOptions = {}): Promise<Ingest> {
    const id = randomUUID();
    const now = new Date();
    const state: SessionState = {
      version: 0,
      size: 0,
      startedAt: now.toISOString(),
      updatedAt: now.getTime(),
      labels: options.labels ?? {},
      parts: [],
      tailBytes: 0,
    };
    const key = `${this.shared.prefix}upload:${id}`;
    await this.shared.redis
      .multi()
      .hset(key, ...encode(state))
      .sadd(`${this.shared.prefix}uploads`, id)
      .exec();
    return new SharedIngest(this.shared, id, now, state.labels);
  }

  override async open(id: string): Promise<Ingest> {
    if (!ID_PATTERN.test(id)) throw new IngestNotFoundError(id);
    const s = decode(await this.shared.redis.hgetall(`${this.shared.prefix}upload:${id}`));
    if (!s) throw new IngestNotFoundError(id);
    return new SharedIngest(this.shared, id, new Date(s.startedAt), s.labels);
  }

  override async list(): Promise<string[]> {
    return this.shared.redis.smembers(`${this.shared.prefix}uploads`);
  }

  /** Removes sessions that saw no bytes for `maxIdleMs` (any replica may run this; removal is idempotent). */
  override async expire(maxIdleMs: number, now = Date.now()): Promise<string[]> {
    const removed: string[] = [];
    for (const id of await this.list()) {
      if (turns.has(id)) continue;
      const s = decode(await this.shared.redis.hgetall(`${this.shared.prefix}upload:${id}`));
      if (!s) {
        await this.shared.redis.srem(`${this.shared.prefix}uploads`, id);
        continue;
      }
      if (now - s.updatedAt <= maxIdleMs) continue;
      try {
        await (await this.open(id)).cancel();
        removed.push(id);
      } catch (e) {
        if (!(e instanceof IngestNotFoundError || e instanceof PathNotFoundError)) throw e;
      }
    }
    return removed;
  }
}
