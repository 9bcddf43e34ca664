/**
 * The registry's services, in distribution's shape (`registry/handlers` over `distribution.Repository`):
 * handlers speak HTTP and call these; implementations decide where content comes from. The local one sits
 * over store/; the manifest cache and the mirror are decorators of it, so neither rewrites a handler, and
 * another storage driver comes in under store/ without touching either.
 *
 * Errors are `RegistryError`s carrying the spec's codes (errors.ts), or store/oci errors that
 * `toRegistryError` maps; anything else is a 500.
 */
import type { Readable } from 'node:stream';
import type { Descriptor, Digest } from '../../oci/index.js';
import type { FileSender } from '../../store/index.js';

/** `n` and `last` of the tags and catalog endpoints (distribution spec "Listing Tags"). */
export interface Page {
  /** At most this many entries. */
  n?: number;
  /** Entries strictly after this one, in lexical (code point) order. */
  last?: string;
}

/** One page of names in lexical order; `more` when entries follow the last one. */
export interface Listing {
  items: string[];
  more: boolean;
}

/** The byte range of a blob read: both ends inclusive, as HTTP `Range` counts. */
export interface BlobRange {
  start: number;
  end?: number;
}

/** A blob as the handlers serve it. */
export interface BlobContent {
  digest: Digest;
  /** Bytes, the whole blob. */
  size: number;
  /**
   * A local file holding exactly the blob's bytes, when there is one: the handler then sends it with
   * reused buffers (send-file.ts). Drivers without local files (S3) and blobs still arriving (the
   * mirror's cold fetches) leave it out and are read through `open`.
   */
  file?: string;
  /** Streams the blob or a range of it. */
  open(range?: BlobRange): Promise<Readable>;
  /**
   * The range from the storage written to a socket from reused buffers (S3, large ranges: see
   * StorageDriver.sender); undefined when the storage has no such path for it, and the handler uses `open`.
   */
  sender?(range: Required<BlobRange>): Promise<FileSender | undefined>;
}

/** What `append` may be told; passed through to the store's ingest (see store/ingests.ts AppendOptions). */
export interface UploadAppendOptions {
  /** The append must start exactly here (chunked uploads sent out of order are refused with 416). */
  offset?: number | undefined;
  /** The source's chunks are used by nobody else once read (a request body): they may move without a copy. */
  handOver?: boolean | undefined;
  /** On failure the source is left open, so the error can be answered on its connection. */
  leaveSourceOpen?: boolean | undefined;
  /** A source that sends nothing for this long (ms) is cut, keeping what arrived; never when absent. */
  idleTimeoutMs?: number | undefined;
}

/**
 * A resumable blob upload session (distribution's BlobWriter): bytes are appended, possibly across
 * requests and restarts, then committed under their verified digest. Nothing is visible before that.
 */
export interface UploadSession {
  readonly id: string;
  /** Bytes received so far. */
  size(): Promise<number>;
  /** Appends a request body; resolves with the session's new size. */
  append(source: Readable, options?: UploadAppendOptions): Promise<number>;
  /** Verifies the bytes against `digest`, makes them the blob and links it into the repository. */
  commit(digest: Digest): Promise<{ digest: Digest; size: number }>;
  /** Removes the session and its bytes. */
  cancel(): Promise<void>;
}

/** A repository's blobs: what it may serve, uploads into it, cross-repository mounts. */
export interface BlobService {
  /** The blob when this repository may serve it (pushed, mounted or pulled through it); else undefined. */
  stat(digest: Digest): Promise<{ digest: Digest; size: number } | undefined>;
  /** The blob for serving; throws BLOB_UNKNOWN when this repository may not serve it. */
  get(digest: Digest): Promise<BlobContent>;
  /**
   * The whole blob ready to be sent from the storage (see StorageDriver.sender), its size read from the
   * storage's answer: the repository's link and the bytes are looked up at once, with no stat before
   * (on S3, one round trip less before the first byte). Undefined when the storage has no such path
   * (then `get`). Throws BLOB_UNKNOWN when this repository may not serve it.
   */
  sender?(digest: Digest): Promise<FileSender | undefined>;
  /** Unlinks the blob from this repository; false when it was not linked. */
  delete(digest: Digest): Promise<boolean>;
  /** Links a blob visible in repository `from` into this one; false when it is not there (upload instead). */
  mount(digest: Digest, from: string): Promise<boolean>;
  /** Starts an upload session. */
  createUpload(): Promise<UploadSession>;
  /** Resumes a session of this repository; throws BLOB_UPLOAD_UNKNOWN for unknown ids and other repositories' sessions. */
  resumeUpload(id: string): Promise<UploadSession>;
}

/** A manifest as stored: its exact bytes under the media type it was pushed with. */
export interface StoredManifest {
  digest: Digest;
  mediaType: string;
  bytes: Buffer;
}

export interface ManifestPutResult {
  digest: Digest;
  /** The media type it was stored under. */
  mediaType: string;
  /** The `subject` the manifest refers to (the server answers OCI-Subject). */
  subject?: Digest;
}

/** A repository's manifests, by digest; tags are the TagService's. */
export interface ManifestService {
  /** The manifest when this repository holds it. */
  get(digest: Digest): Promise<StoredManifest | undefined>;
  /**
   * Validates (manifest-validation.ts: parse rules, referenced blobs present here) and stores the
   * manifest; tags it when `tag` is given. Throws MANIFEST_INVALID, MANIFEST_BLOB_UNKNOWN, DIGEST_INVALID.
   * `digest` is the digest the bytes must have (a push by digest); sha256 of the bytes otherwise.
   */
  put(bytes: Buffer, contentType: string | undefined, options: { tag?: string; digest?: Digest }): Promise<ManifestPutResult>;
  /** Removes the manifest, its tags and its referrers entry; false when it was not here. */
  delete(digest: Digest): Promise<boolean>;
}

export interface TagService {
  /** The digest a tag points at; undefined when the tag is unknown. */
  resolve(tag: string): Promise<Digest | undefined>;
  /** Tags in lexical order; throws NAME_UNKNOWN when the repository does not exist. */
  list(page: Page): Promise<Listing>;
  /** Removes a tag (the manifest stays); false when it was not there. */
  delete(tag: string): Promise<boolean>;
}

export interface ReferrerService {
  /** Descriptors of the manifests whose `subject` is `subject` (distribution spec v1.1 referrers API). */
  list(subject: Digest): Promise<Descriptor[]>;
}

/** One repository's services (distribution's `Repository`). */
export interface Repository {
  readonly name: string;
  readonly blobs: BlobService;
  readonly manifests: ManifestService;
  readonly tags: TagService;
  readonly referrers: ReferrerService;
}

/** The registry as handlers see it (distribution's `Namespace`). */
export interface Registry {
  /**
   * The services of repository `name` (already validated by the route). Cheap: made per request.
   * `namespace` is the registry the client means (containerd's `?ns=`), for mirrors; others ignore it.
   */
  repository(name: string, namespace?: string): Repository;
  /** Repository names in lexical order, paginated. */
  catalog(page: Page): Promise<Listing>;
  /**
   * Throws when the storage cannot be reached (for /healthz: 503). Resolves to a sentence when the registry
   * serves but degraded (replicas whose Redis is unreachable: pulls go on, pushes fail), else undefined.
   */
  checkHealth(): Promise<string | undefined>;
  /** Upload sessions open (a gauge for /metrics). */
  uploadSessionCount(): Promise<number>;
  /** Removes upload sessions that received no bytes for `maxIdleMs`; returns their ids. */
  expireUploads(maxIdleMs: number): Promise<string[]>;
  /** Where the content lives, for logs (a directory, a bucket). */
  readonly location: string;
}
