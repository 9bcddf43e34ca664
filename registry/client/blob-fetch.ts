import { Transform, type Readable, type TransformCallback } from 'node:stream';
import type { Descriptor, Reference } from '../../oci/index.js';
import { DigestMismatchError, SizeMismatchError, type Ingest, type Store } from '../../store/index.js';
import { repositoryScope } from './auth.js';
import type { RegistryClient } from './client.js';
import { ContentDigestError, NotFoundError, RegistryClientError, TruncatedDownloadError, isTransient } from './errors.js';
import { describeEndpoint, endpointRepository, type Endpoint } from './hosts.js';
import { backoffDelay, sleep } from './retry.js';
import { header, type HttpResponse } from './transport.js';

/**
 * Counts bytes on their way to the ingest, reports progress at most every 100 ms, and calls `overflow`
 * once more than `limit` bytes (the descriptor's size) have come, so a server sending too much is cut
 * off instead of filling the disk.
 */
class Counter extends Transform {
  private last = 0;
  private overflowed = false;
  constructor(
    public count: number,
    private readonly limit: number,
    private readonly report: (bytes: number) => void,
    private readonly overflow: () => void,
  ) {
    super({ highWaterMark: 1 << 20 });
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.count += chunk.length;
    const now = Date.now();
    if (now - this.last > 100) {
      this.last = now;
      this.report(this.count);
    }
    if (this.count > this.limit && !this.overflowed) {
      this.overflowed = true;
      this.overflow();
    }
    cb(null, chunk);
  }
}

/**
 * Pipes a response body into `into` and ends `into` normally even when the connection breaks, so every
 * byte that arrived reaches the ingest and the next attempt resumes after it. The caller sees a cut as
 * fewer bytes than the descriptor's size.
 */
function endCleanly(body: Readable, into: Transform): void {
  const finish = () => {
    if (!into.writableEnded) into.end();
  };
  body.on('error', finish);
  body.on('close', finish);
  body.pipe(into);
}

/** Where a 206 answer starts (`Content-Range: bytes START-END/SIZE`), if it says. */
function rangeStart(res: HttpResponse): number | undefined {
  const m = /^bytes (\d+)-/.exec(header(res, 'content-range') ?? '');
  return m ? Number(m[1]) : undefined;
}

/**
 * One blob's download from one endpoint into one ingest, over as many GETs as the connection needs:
 * the ingest writes and hashes the bytes on the store's hashing threads, so this thread only moves them.
 */
class BlobDownload {
  private ingest: Ingest | undefined;
  readonly path: string;
  readonly where: string;
  private readonly scopes: string[];

  constructor(
    private readonly client: RegistryClient,
    private readonly store: Store,
    private readonly endpoint: Endpoint,
    repository: string,
    private readonly desc: Descriptor,
    private readonly report: (bytes: number) => void,
  ) {
    const repo = endpointRepository(endpoint, repository);
    this.path = `/v2/${repo}/blobs/${desc.digest}`;
    this.where = `${describeEndpoint(endpoint)}${this.path}`;
    this.scopes = [repositoryScope(repo, ['pull'])];
  }

  /**
   * One GET, resuming with a Range request after the bytes the ingest holds; resolves once the ingest
   * holds exactly the descriptor's size. Throws NotFoundError (404), ContentDigestError (more bytes than
   * the descriptor says), TruncatedDownloadError (a cut, or a resume answered from the wrong offset:
   * worth another attempt), or what the request or the store threw.
   */
  async attempt(): Promise<void> {
    this.ingest ??= await this.store.ingests.create({ expectedSize: this.desc.size });
    let offset = await this.ingest.size();
    const res = await this.client.request(this.endpoint, {
      method: 'GET',
      path: this.path,
      headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
      scopes: this.scopes,
      followRedirects: true,
    });
    if (res.status === 404) {
      res.body.resume();
      throw new NotFoundError(`blob ${this.desc.digest}`, `${describeEndpoint(this.endpoint)} does not have it`);
    }
    if (offset > 0 && res.status === 206 && rangeStart(res) !== offset) {
      res.body.destroy();
      await this.restart();
      throw new TruncatedDownloadError(this.where, offset, this.desc.size, 'the resume was answered from the wrong offset; starting over');
    }
    if (offset > 0 && res.status !== 206) {
      await this.restart(); // the server ignored the range: this answer is the whole blob
      offset = 0;
    }
    const counter = new Counter(offset, this.desc.size, this.report, () => res.body.destroy());
    endCleanly(res.body, counter);
    let size: number;
    try {
      size = await this.ingest!.append(counter, { handOver: true }); // the body's chunks pass through Counter and are used by nobody else
    } catch (e) {
      res.body.destroy();
      throw e;
    }
    if (size > this.desc.size) throw new ContentDigestError(this.where, this.desc.digest, `more bytes than the ${this.desc.size} the descriptor says`);
    if (size < this.desc.size) throw new TruncatedDownloadError(this.where, size, this.desc.size);
  }

  /** Verifies the bytes and makes them the blob; a mismatch is a ContentDigestError (the bytes are dropped). */
  async commit(): Promise<void> {
    const ingest = this.ingest;
    this.ingest = undefined;
    if (!ingest) throw new RegistryClientError(`nothing was downloaded for ${this.desc.digest} from ${this.where}`);
    try {
      await ingest.commit(this.desc.digest, this.desc.size);
    } catch (e) {
      if (e instanceof DigestMismatchError) throw new ContentDigestError(this.where, this.desc.digest, e.actual);
      if (e instanceof SizeMismatchError) throw new ContentDigestError(this.where, this.desc.digest, `${e.actual} bytes instead of ${this.desc.size}`);
      throw e;
    }
  }

  /** Drops what was downloaded (nothing becomes visible). */
  async cancel(): Promise<void> {
    const ingest = this.ingest;
    this.ingest = undefined;
    await ingest?.cancel().catch(() => undefined);
  }

  private async restart(): Promise<void> {
    await this.cancel();
    this.ingest = await this.store.ingests.create({ expectedSize: this.desc.size });
  }
}

/**
 * Downloads one blob into the store, verified, from the first endpoint (mirrors first) that has it with
 * the right bytes. A cut connection resumes with a Range request where the bytes stopped (up to the
 * client's retries); content that does not hash to the digest is discarded and the next endpoint asked.
 * Throws NotFoundError when no endpoint has it, else the last endpoint's error (ContentDigestError,
 * RegistryClientError "kept failing", UnauthorizedError, …).
 */
export async function fetchBlob(
  client: RegistryClient,
  store: Store,
  ref: Pick<Reference, 'registry' | 'repository'>,
  desc: Descriptor,
  endpoints?: Endpoint[],
): Promise<void> {
  if (await store.blobs.has(desc.digest)) return;
  const list = endpoints ?? (await client.endpoints(ref.registry));
  let lastError: unknown;
  let notFound = 0;
  for (const endpoint of list) {
    try {
      await downloadFrom(client, store, endpoint, ref.repository, desc);
      return;
    } catch (e) {
      lastError = e;
      if (e instanceof NotFoundError) notFound++;
      if (list.length > 1)
        client.onProgress?.({ type: 'notice', message: `blob ${desc.digest.slice(7, 19)} from ${describeEndpoint(endpoint)} failed: ${(e as Error).message}` });
    }
  }
  if (notFound === list.length) throw new NotFoundError(`blob ${desc.digest} in ${ref.registry}/${ref.repository}`);
  throw lastError;
}

async function downloadFrom(client: RegistryClient, store: Store, endpoint: Endpoint, repository: string, desc: Descriptor): Promise<void> {
  const progress = (phase: 'downloading' | 'retrying' | 'done', current: number, note?: string) =>
    client.onProgress?.({ type: 'blob', digest: desc.digest, mediaType: desc.mediaType, phase, current, total: desc.size, ...(note ? { note } : {}) });
  const download = new BlobDownload(client, store, endpoint, repository, desc, (n) => progress('downloading', n));
  try {
    progress('downloading', 0);
    for (let attempt = 0; ; ) {
      try {
        await download.attempt();
        break;
      } catch (e) {
        if (!isTransient(e)) throw e;
        if (attempt >= client.retry.retries)
          throw new RegistryClientError(`download of ${desc.digest} from ${download.where} kept failing: ${(e as Error).message}`);
        progress('retrying', 0, (e as Error).message);
        await sleep(backoffDelay(client.retry, attempt++));
      }
    }
    await download.commit();
    progress('done', desc.size);
  } catch (e) {
    await download.cancel();
    throw e;
  }
}
