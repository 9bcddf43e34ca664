import { PassThrough, Readable } from 'node:stream';
import { createRequire } from 'node:module';
import type * as S3 from '@aws-sdk/client-s3';
import { PathNotFoundError } from '../errors.js';
import { pumpInto } from './pump.js';
import { openGet } from './s3-get.js';
import {
  checkPath,
  type AppendControl,
  type ByteRange,
  type FileInfo,
  type FileSender,
  type FileWriter,
  type PutOptions,
  type StorageDriver,
  type WriterOptions,
} from './storage-driver.js';

let sdk: typeof S3 | undefined;
/**
 * The AWS SDK, loaded when the first S3 driver is made: it is hundreds of modules, and every command
 * imports store/ — those that never touch S3 (a build, `tsbuild images`) start without it.
 */
export function s3(): typeof S3 {
  return (sdk ??= createRequire(import.meta.url)('@aws-sdk/client-s3') as typeof S3);
}

/** S3's smallest part, but for the last one (S3 API: UploadPart, "EntityTooSmall"). */
export const MIN_PART_BYTES = 5 << 20;
/** A single copy may move at most 5 GiB (CopyObject); larger objects are copied part by part. */
const MAX_COPY_BYTES = 5 * 1024 ** 3;
const COPY_PART_BYTES = 1024 ** 3;
/** Bytes a reader fetches ahead of its consumer. */
const READ_AHEAD = 4 << 20;
/**
 * Bounded ranges from this many bytes on go through sender() (s3-get.ts) when the handler can use it;
 * smaller ones through the SDK, whose kept-alive connections answer them sooner than a connection per GET.
 */
const SENDER_MIN_BYTES = 1 << 20;
const CONNECT_TIMEOUT_MS = 5000;
/** The longest S3 may go silent in the middle of a body before the read fails. */
const IDLE_TIMEOUT_MS = 60_000;
/** Deletes of a subtree's objects in flight at once (one DeleteObject each: see delete()). */
const DELETE_CONCURRENCY = 16;

export interface S3DriverOptions {
  /** http(s)://host:port of the S3 API (Ceph RGW, MinIO, AWS); AWS's own endpoint when absent. */
  endpoint?: string | undefined;
  bucket: string;
  /** Default us-east-1 (RGW ignores it, but SigV4 signs with it). */
  region?: string | undefined;
  /** Key prefix every path lives under ('' or absent: the bucket's root). No leading or trailing '/'. */
  rootDirectory?: string | undefined;
  /** Path-style URLs (http://host/bucket/key): needed for RGW and MinIO without wildcard DNS. Default true. */
  forcePathStyle?: boolean | undefined;
  /** Credentials; else the SDK's chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profiles, …). */
  accessKeyId?: string | undefined;
  secretAccessKey?: string | undefined;
  /** Bytes per multipart part (≥ 5 MiB); default 8 MiB. A writer buffers at most one part in memory. */
  partBytes?: number | undefined;
  /** Sign a hash of every body (SigV4's default; costs a SHA-256 pass over each part on this thread). Default false: UNSIGNED-PAYLOAD. */
  signPayload?: boolean | undefined;
  /** Connections to the endpoint at most; default 64. */
  maxSockets?: number | undefined;
}

function httpStatus(e: unknown): number | undefined {
  return (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

function isNotFound(e: unknown): boolean {
  const name = (e as Error).name;
  return name === 'NoSuchKey' || name === 'NotFound' || httpStatus(e) === 404;
}

/** One line naming the operation, key and S3's answer (the SDK's own messages are often just "UnknownError"). */
function s3Error(op: string, key: string, e: unknown): Error {
  const status = httpStatus(e);
  const name = (e as Error).name;
  const message = (e as Error).message;
  return new Error(`S3 ${op} ${key}: ${name}${status ? ` (HTTP ${status})` : ''}${message && message !== name ? `: ${message}` : ''}`, { cause: e });
}

/** A URI path segment as SigV4 and S3 encode it (RFC 3986: all but unreserved characters escaped). */
function uriEscape(segment: string): string {
  return encodeURIComponent(segment).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** `bucket/key` for x-amz-copy-source, each segment URL-encoded (S3 API: CopyObject). */
function copySource(bucket: string, key: string): string {
  return `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
}

/**
 * A file on S3 being written: a single PutObject when it stays under one part, else a multipart upload
 * whose parts are `partBytes` (≥ 5 MiB) but the last. An append continues an existing object: one of
 * ≥ 5 MiB becomes part 1 by a server-side UploadPartCopy (no bytes through us), a smaller one is read
 * into the first part's buffer. The object appears (or is replaced) only at commit, atomically, so
 * readers see the old bytes or the new, and cancel leaves the old object as it was.
 */
class S3Writer implements FileWriter {
  readonly maxPending = 1;
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  private uploadId: string | undefined;
  private readonly parts: S3.CompletedPart[] = [];

  private constructor(
    private readonly driver: S3Driver,
    private readonly key: string,
    public size: number,
  ) {}

  static async open(driver: S3Driver, key: string, append: boolean): Promise<S3Writer> {
    if (!append) return new S3Writer(driver, key, 0);
    let existing: number;
    try {
      existing = (await driver.client.send(new (s3().HeadObjectCommand)({ Bucket: driver.bucket, Key: key }))).ContentLength ?? 0;
    } catch (e) {
      if (isNotFound(e)) return new S3Writer(driver, key, 0);
      throw s3Error('HeadObject', key, e);
    }
    const w = new S3Writer(driver, key, existing);
    if (existing >= MIN_PART_BYTES) {
      await w.start();
      for (let start = 0; start < existing; start += existing > MAX_COPY_BYTES ? COPY_PART_BYTES : existing) {
        const end = Math.min(existing, start + (existing > MAX_COPY_BYTES ? COPY_PART_BYTES : existing)) - 1;
        await w.copyPart(key, start, end, existing);
      }
    } else if (existing > 0) {
      const bytes = await driver.getContent(driver.pathOf(key));
      w.buffered.push(bytes);
      w.bufferedBytes = bytes.length;
    }
    return w;
  }

  private async start(): Promise<void> {
    try {
      const created = await this.driver.client.send(new (s3().CreateMultipartUploadCommand)({ Bucket: this.driver.bucket, Key: this.key }));
      this.uploadId = created.UploadId!;
    } catch (e) {
      throw s3Error('CreateMultipartUpload', this.key, e);
    }
  }

  private async copyPart(source: string, start: number, end: number, total: number): Promise<void> {
    const PartNumber = this.parts.length + 1;
    try {
      const copied = await this.driver.client.send(
        new (s3().UploadPartCopyCommand)({
          Bucket: this.driver.bucket,
          Key: this.key,
          UploadId: this.uploadId,
          PartNumber,
          CopySource: copySource(this.driver.bucket, source),
          ...(start === 0 && end === total - 1 ? {} : { CopySourceRange: `bytes=${start}-${end}` }),
        }),
      );
      this.parts.push({ PartNumber, ETag: copied.CopyPartResult!.ETag });
    } catch (e) {
      throw s3Error('UploadPartCopy', this.key, e);
    }
  }

  private async uploadBuffered(): Promise<void> {
    if (!this.uploadId) await this.start();
    const body = Buffer.concat(this.buffered, this.bufferedBytes);
    this.buffered = [];
    this.bufferedBytes = 0;
    const PartNumber = this.parts.length + 1;
    try {
      const sent = await this.driver.client.send(
        new (s3().UploadPartCommand)({
          Bucket: this.driver.bucket,
          Key: this.key,
          UploadId: this.uploadId,
          PartNumber,
          Body: body,
          ContentLength: body.length,
        }),
      );
      this.parts.push({ PartNumber, ETag: sent.ETag });
    } catch (e) {
      throw s3Error('UploadPart', this.key, e);
    }
  }

  async write(chunks: Buffer[], length: number): Promise<void> {
    for (const c of chunks) this.buffered.push(c);
    this.bufferedBytes += length;
    this.size += length;
    if (this.bufferedBytes >= this.driver.partBytes) await this.uploadBuffered();
  }

  async commit(): Promise<number> {
    try {
      if (!this.uploadId) {
        await this.driver.putContent(this.driver.pathOf(this.key), Buffer.concat(this.buffered, this.bufferedBytes));
        this.buffered = [];
        this.bufferedBytes = 0;
        return this.size;
      }
      if (this.bufferedBytes > 0) await this.uploadBuffered();
      await this.driver.client
        .send(
          new (s3().CompleteMultipartUploadCommand)({
            Bucket: this.driver.bucket,
            Key: this.key,
            UploadId: this.uploadId,
            MultipartUpload: { Parts: this.parts },
          }),
        )
        .catch((e: unknown) => {
          throw s3Error('CompleteMultipartUpload', this.key, e);
        });
      this.uploadId = undefined;
      return this.size;
    } catch (e) {
      await this.cancel();
      throw e;
    }
  }

  async cancel(): Promise<void> {
    this.buffered = [];
    this.bufferedBytes = 0;
    const uploadId = this.uploadId;
    this.uploadId = undefined;
    if (uploadId) {
      await this.driver.client
        .send(new (s3().AbortMultipartUploadCommand)({ Bucket: this.driver.bucket, Key: this.key, UploadId: uploadId }))
        .catch(() => undefined);
    }
  }
}

/**
 * The StorageDriver over an S3 bucket (distribution's `s3` driver; tested against Ceph RGW 16.2). A path
 * is the key `rootDirectory/path`; a "directory" is a key prefix ending in '/', so it exists while
 * objects exist under it. Correctness never rests on a listing (listings may lag on some stores): files
 * are read, stat'ed and replaced by their exact keys; `list`, `listPage` and subtree deletes are for
 * enumeration and clean-up. Checksums are sent only where S3 requires them
 * (requestChecksumCalculation/responseChecksumValidation 'WHEN_REQUIRED': RGW 16 answers 411 to the
 * SDK's default aws-chunked uploads with trailing CRC32).
 */
export class S3Driver implements StorageDriver {
  readonly name = 's3';
  readonly client: S3.S3Client;
  readonly bucket: string;
  readonly partBytes: number;
  private readonly prefix: string;

  constructor(readonly options: S3DriverOptions) {
    this.bucket = options.bucket;
    const root = (options.rootDirectory ?? '').replace(/^\/+|\/+$/g, '');
    this.prefix = root ? `${root}/` : '';
    this.partBytes = Math.max(MIN_PART_BYTES, options.partBytes ?? 8 << 20);
    // The SDK version is pinned (package.json); its notice that later versions need Node 22 is noise in
    // every command's stderr. An explicit setting wins.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    this.client = new (s3().S3Client)({
      region: options.region ?? 'us-east-1',
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      forcePathStyle: options.forcePathStyle ?? true,
      ...(options.accessKeyId && options.secretAccessKey
        ? { credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey } }
        : {}),
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: { httpAgent: { keepAlive: true, maxSockets: options.maxSockets ?? 64 }, connectionTimeout: 5000 },
    });
    // SigV4 signs a hash of every body, computed on this thread (128 MiB ≈ 0.1 s): send parts and objects
    // as UNSIGNED-PAYLOAD instead (S3 API; RGW accepts it). Their bytes are verified against their digest
    // by the store anyway; over https TLS protects them in transit.
    if (options.signPayload !== true) {
      this.client.middlewareStack.add(
        (next) => async (args) => {
          const request = args.request as { headers?: Record<string, string>; body?: unknown };
          const headers = request.headers;
          if (headers && request.body !== undefined && typeof request.body !== 'string') {
            for (const name of Object.keys(headers)) if (name.toLowerCase() === 'x-amz-content-sha256') delete headers[name];
            headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
          }
          return next(args);
        },
        { step: 'build', priority: 'low', name: 'tsbuildUnsignedPayload' },
      );
    }
  }

  /** Where the content lives, for logs: s3://bucket/root. */
  get location(): string {
    return `s3://${this.bucket}/${this.prefix}`;
  }

  key(path: string): string {
    return this.prefix + checkPath(path);
  }

  /** The driver path of a key made by key(). */
  pathOf(key: string): string {
    return key.slice(this.prefix.length);
  }

  /** Throws a one-line error when the bucket cannot be reached (for /healthz and start-up). */
  async check(): Promise<void> {
    try {
      await this.client.send(new (s3().HeadBucketCommand)({ Bucket: this.bucket }));
    } catch (e) {
      // HEAD answers carry no error body, so the SDK can only say "UnknownError": name the two usual causes.
      const status = httpStatus(e);
      const where = `${this.options.endpoint ?? 'AWS S3'}`;
      if (status === 403) {
        throw new Error(
          `S3 at ${where} denied access to bucket ${this.bucket} (HTTP 403): check the access key and secret key (storage.s3 access-key/secret-key, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) and the bucket's policy`,
          { cause: e },
        );
      }
      if (status === 404) throw new Error(`S3 at ${where} has no bucket ${this.bucket} (HTTP 404): create it, or fix storage.s3.bucket`, { cause: e });
      throw s3Error('HeadBucket', this.bucket, e);
    }
  }

  async getContent(path: string): Promise<Buffer> {
    const key = this.key(path);
    try {
      const got = await this.client.send(new (s3().GetObjectCommand)({ Bucket: this.bucket, Key: key }));
      return Buffer.from(await got.Body!.transformToByteArray());
    } catch (e) {
      if (isNotFound(e)) throw new PathNotFoundError(path);
      throw s3Error('GetObject', key, e);
    }
  }

  /** One PutObject: S3 replaces an object atomically, and a completed PUT is durable (`options` changes nothing). */
  async putContent(path: string, content: string | Uint8Array, _options?: PutOptions): Promise<void> {
    const key = this.key(path);
    const body = typeof content === 'string' ? Buffer.from(content) : content;
    try {
      await this.client.send(new (s3().PutObjectCommand)({ Bucket: this.bucket, Key: key, Body: body, ContentLength: body.length }));
    } catch (e) {
      throw s3Error('PutObject', key, e);
    }
  }

  async reader(path: string, range?: ByteRange): Promise<Readable> {
    const key = this.key(path);
    const Range = range ? `bytes=${range.start}-${range.end ?? ''}` : undefined;
    try {
      const got = await this.client.send(new (s3().GetObjectCommand)({ Bucket: this.bucket, Key: key, ...(Range ? { Range } : {}) }));
      // (Blob GETs over http:// go through sender() instead.) Read ahead of the consumer: RGW fills faster than a client drains, and without a buffer between them
      // the two sockets take turns (measured: a 128 MiB pull through a replica 1.1–1.4 s → 0.4–0.6 s).
      const body = got.Body as Readable;
      const ahead = new PassThrough({ highWaterMark: READ_AHEAD });
      body.on('error', (e) => ahead.destroy(e));
      ahead.on('close', () => body.destroy());
      return body.pipe(ahead);
    } catch (e) {
      if (isNotFound(e)) throw new PathNotFoundError(path);
      // A range starting at or past the end: no bytes, as a local file read there gives.
      if (httpStatus(e) === 416) return Readable.from([]);
      throw s3Error('GetObject', key, e);
    }
  }

  /**
   * A range of an object for a blob GET, sent from reused buffers (s3-get.ts): one GetObject on its own
   * connection, signed by the client's own SigV4 signer. Only for an explicit http:// endpoint (TLS goes
   * through the SDK); undefined too for a bounded range under SENDER_MIN_BYTES, a 416 (an empty object
   * read to its end, or a range past it), a chunked answer and connection failures or 5xx answers (the
   * SDK's reader, with its retries, then has them).
   */
  async sender(path: string, range: ByteRange): Promise<FileSender | undefined> {
    const length = range.end === undefined ? undefined : range.end - range.start + 1;
    const endpoint = this.options.endpoint ? new URL(this.options.endpoint) : undefined;
    if ((length !== undefined && length < SENDER_MIN_BYTES) || endpoint?.protocol !== 'http:') return undefined;
    const key = this.key(path);
    const encodedKey = key.split('/').map(uriEscape).join('/');
    const base = endpoint.pathname.replace(/\/+$/, '');
    const pathStyle = this.options.forcePathStyle ?? true;
    const hostname = pathStyle ? endpoint.hostname : `${this.bucket}.${endpoint.hostname}`;
    const port = endpoint.port === '' ? 80 : Number(endpoint.port);
    const signer = await this.client.config.signer();
    const signed = await signer.sign({
      method: 'GET',
      protocol: 'http:',
      hostname,
      port,
      path: pathStyle ? `${base}/${uriEscape(this.bucket)}/${encodedKey}` : `${base}/${encodedKey}`,
      query: {},
      headers: {
        host: endpoint.port === '' ? hostname : `${hostname}:${port}`,
        'x-amz-content-sha256': 'UNSIGNED-PAYLOAD',
        range: `bytes=${range.start}-${range.end ?? ''}`,
      },
    });
    let opened: Awaited<ReturnType<typeof openGet>>;
    try {
      opened = await openGet({
        host: endpoint.hostname,
        port,
        path: signed.path,
        headers: signed.headers,
        connectTimeoutMs: CONNECT_TIMEOUT_MS,
        idleTimeoutMs: IDLE_TIMEOUT_MS,
      });
    } catch {
      return undefined;
    }
    const { status, sender } = opened;
    if (sender) {
      if (length === undefined || sender.length === length) return sender;
      sender.cancel();
      throw new Error(`S3 GetObject ${key}: ${sender.length} bytes answered for a range of ${length}`);
    }
    if (status === 404) throw new PathNotFoundError(path);
    if (status < 300 || status === 416 || status >= 500) return undefined;
    const code = /<Code>([^<]*)<\/Code>/.exec(opened.errorBody ?? '')?.[1] ?? 'UnknownError';
    const message = /<Message>([^<]*)<\/Message>/.exec(opened.errorBody ?? '')?.[1];
    throw new Error(`S3 GetObject ${key}: ${code} (HTTP ${status})${message ? `: ${message}` : ''}`);
  }

  async writer(path: string, options: WriterOptions = {}): Promise<FileWriter> {
    return S3Writer.open(this, this.key(path), options.append ?? false);
  }

  /** Appends through a writer (see S3Writer): the object is rewritten server-side, with the new bytes after the old. */
  async appendFrom(path: string, source: Readable, control: AppendControl & Pick<WriterOptions, 'hashOnThread'> = {}): Promise<number> {
    return pumpInto(source, await this.writer(path, { append: true }), control);
  }

  async stat(path: string): Promise<FileInfo> {
    const key = this.key(path);
    try {
      const head = await this.client.send(new (s3().HeadObjectCommand)({ Bucket: this.bucket, Key: key }));
      return { path, size: head.ContentLength ?? 0, modTime: head.LastModified ?? new Date(0), isDir: false };
    } catch (e) {
      if (!isNotFound(e)) throw s3Error('HeadObject', key, e);
    }
    // Not a file: a directory when anything lives under it.
    const listed = await this.listRaw(`${key}/`, { maxKeys: 1 });
    if (listed.keys.length + listed.prefixes.length > 0) return { path, size: 0, modTime: new Date(0), isDir: true };
    throw new PathNotFoundError(path);
  }

  /** One ListObjectsV2 page: keys and common prefixes (full keys) in S3's (UTF-8 byte) order. */
  private async listRaw(
    prefix: string,
    o: { delimiter?: string | undefined; startAfter?: string | undefined; token?: string | undefined; maxKeys?: number | undefined },
  ) {
    try {
      const out = await this.client.send(
        new (s3().ListObjectsV2Command)({
          Bucket: this.bucket,
          Prefix: prefix,
          ...(o.delimiter ? { Delimiter: o.delimiter } : {}),
          ...(o.startAfter ? { StartAfter: o.startAfter } : {}),
          ...(o.token ? { ContinuationToken: o.token } : {}),
          ...(o.maxKeys ? { MaxKeys: o.maxKeys } : {}),
        }),
      );
      return {
        keys: (out.Contents ?? []).map((c) => c.Key!),
        prefixes: (out.CommonPrefixes ?? []).map((p) => p.Prefix!),
        next: out.IsTruncated ? out.NextContinuationToken : undefined,
      };
    } catch (e) {
      throw s3Error('ListObjectsV2', prefix, e);
    }
  }

  private dirPrefix(path: string): string {
    return path === '' ? this.prefix : `${this.key(path)}/`;
  }

  async list(path: string): Promise<string[]> {
    return this.listPage(path);
  }

  /**
   * Names of `path`'s children after `after`, in code point order. S3 lists with Delimiter '/' from
   * StartAfter `dir/after`; a child directory `c` comes as the common prefix `c/`, which S3 orders after
   * `c-x` and `c.x` (both < '/'), so entries are read until the listing has passed `p/` for every prefix
   * p of the page's last name: no name that sorts inside the page can still come.
   */
  async listPage(path: string, after?: string, limit = Infinity): Promise<string[]> {
    const dir = this.dirPrefix(path);
    const names = new Set<string>();
    let token: string | undefined;
    let cursor = '';
    for (;;) {
      const page = await this.listRaw(dir, {
        delimiter: '/',
        ...(token ? { token } : after !== undefined ? { startAfter: dir + after } : {}),
        maxKeys: limit === Infinity ? 1000 : Math.min(1000, Math.max(limit + 16, 64)),
      });
      for (const k of page.keys) names.add(k.slice(dir.length));
      for (const p of page.prefixes) names.add(p.slice(dir.length, -1));
      const last = [...page.keys, ...page.prefixes].sort().pop();
      if (last !== undefined && last > cursor) cursor = last;
      token = page.next;
      if (!token) break;
      if (limit !== Infinity) {
        const sorted = [...names].filter((n) => n !== '' && (after === undefined || n > after)).sort();
        if (sorted.length >= limit) {
          const nth = sorted[limit - 1]!;
          let bound = dir + nth;
          for (let i = 1; i <= nth.length; i++) {
            const candidate = `${dir}${nth.slice(0, i)}/`;
            if (candidate > bound) bound = candidate;
          }
          if (cursor >= bound) break;
        }
      }
    }
    const sorted = [...names].filter((n) => n !== '' && (after === undefined || n > after)).sort();
    return limit === Infinity ? sorted : sorted.slice(0, limit);
  }

  async move(source: string, destination: string): Promise<void> {
    const from = this.key(source);
    const to = this.key(destination);
    let size: number;
    try {
      size = (await this.client.send(new (s3().HeadObjectCommand)({ Bucket: this.bucket, Key: from }))).ContentLength ?? 0;
    } catch (e) {
      if (isNotFound(e)) throw new PathNotFoundError(source);
      throw s3Error('HeadObject', from, e);
    }
    if (size <= MAX_COPY_BYTES) {
      try {
        await this.client.send(new (s3().CopyObjectCommand)({ Bucket: this.bucket, Key: to, CopySource: copySource(this.bucket, from) }));
      } catch (e) {
        if (isNotFound(e)) throw new PathNotFoundError(source);
        throw s3Error('CopyObject', from, e);
      }
    } else {
      // Over 5 GiB: a multipart upload of ranged part copies (S3 API: UploadPartCopy).
      await this.copyLarge(from, to, size);
    }
    await this.deleteKey(from);
  }

  private async copyLarge(from: string, to: string, size: number): Promise<void> {
    let uploadId: string | undefined;
    try {
      uploadId = (await this.client.send(new (s3().CreateMultipartUploadCommand)({ Bucket: this.bucket, Key: to }))).UploadId!;
      const parts: S3.CompletedPart[] = [];
      for (let start = 0, n = 1; start < size; start += COPY_PART_BYTES, n++) {
        const end = Math.min(size, start + COPY_PART_BYTES) - 1;
        const out = await this.client.send(
          new (s3().UploadPartCopyCommand)({
            Bucket: this.bucket,
            Key: to,
            UploadId: uploadId,
            PartNumber: n,
            CopySource: copySource(this.bucket, from),
            CopySourceRange: `bytes=${start}-${end}`,
          }),
        );
        parts.push({ PartNumber: n, ETag: out.CopyPartResult!.ETag });
      }
      await this.client.send(
        new (s3().CompleteMultipartUploadCommand)({ Bucket: this.bucket, Key: to, UploadId: uploadId, MultipartUpload: { Parts: parts } }),
      );
    } catch (e) {
      if (uploadId) await this.client.send(new (s3().AbortMultipartUploadCommand)({ Bucket: this.bucket, Key: to, UploadId: uploadId })).catch(() => undefined);
      throw s3Error('UploadPartCopy', from, e);
    }
  }

  private async deleteKey(key: string): Promise<void> {
    try {
      await this.client.send(new (s3().DeleteObjectCommand)({ Bucket: this.bucket, Key: key }));
    } catch (e) {
      if (!isNotFound(e)) throw s3Error('DeleteObject', key, e);
    }
  }

  /** Removes one object by its exact key (no listing); no error when absent. */
  deleteFile(path: string): Promise<void> {
    return this.deleteKey(this.key(path));
  }

  /**
   * Removes the file and every object under `path/`. One DeleteObject per key (DeleteObjects needs a
   * Content-MD5 that SDKs now replace with CRC32, which RGW 16 refuses). Objects listed late are left to
   * later clean-up; nothing reads them by a listing.
   */
  async delete(path: string): Promise<void> {
    // '' is the whole root directory (clean-up of a test's or a bench's prefix).
    const under = path === '' ? this.prefix : `${this.key(path)}/`;
    if (path === '' && this.prefix === '') throw new Error('refusing to delete a whole bucket: give the driver a root directory');
    if (path !== '') await this.deleteKey(this.key(path));
    let token: string | undefined;
    do {
      const page = await this.listRaw(under, { token });
      token = page.next;
      for (let i = 0; i < page.keys.length; i += DELETE_CONCURRENCY) {
        await Promise.all(page.keys.slice(i, i + DELETE_CONCURRENCY).map((k) => this.deleteKey(k)));
      }
    } while (token);
  }
}
