import { Readable, Transform, type TransformCallback } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { Worker } from 'node:worker_threads';
import type { Descriptor, Digest, Reference } from '../../oci/index.js';
import { DigestMismatchError, FilesystemDriver, SizeMismatchError, type Ingest, type Store } from '../../store/index.js';
import { repositoryScope } from './auth.js';
import type { RegistryClient } from './client.js';
import { ContentDigestError, NotFoundError, RegistryClientError, isTransient } from './errors.js';
import { describeEndpoint, endpointRepository, type Endpoint } from './hosts.js';
import { backoffDelay, sleep } from './retry.js';
import { discard, header, type HttpRequest, type HttpResponse } from './transport.js';
import type { SerializedError, WorkerReply, WorkerRequest } from './blob-worker.js';


type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

class TruncatedError extends Error {
  readonly code = 'TRUNCATED';
}

/** Where downloaded bytes go: an ingest on this thread, or one owned by a worker thread. */
interface BlobSink {
  /** One GET attempt (resuming where the bytes stopped); returns the bytes held after it. */
  fetch(endpoint: Endpoint, path: string, scopes: string[]): Promise<number>;
  commit(digest: Digest, size: number): Promise<void>;
  cancel(): Promise<void>;
}

/** Counts bytes on their way to the store and reports progress at most every 100 ms. */
class Counter extends Transform {
  private last = 0;
  constructor(
    public count: number,
    private readonly report: (n: number) => void,
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
    cb(null, chunk);
  }
}

/**
 * Pipes a response body into `into` and ends it normally even when the connection breaks, so that every
 * byte that arrived is flushed to the ingest and the next attempt can resume after it (a failing source
 * would make the store drop what was still buffered). The caller sees the cut as a short size.
 */
export function endCleanly(body: Readable, into: Transform): void {
  const finish = () => {
    if (!into.writableEnded) into.end();
  };
  body.on('error', finish);
  body.on('close', finish);
  body.pipe(into);
}

function rangeStart(res: HttpResponse): number | undefined {
  const m = /^bytes (\d+)-/.exec(header(res, 'content-range') ?? '');
  return m ? Number(m[1]) : undefined;
}

class LocalSink implements BlobSink {
  private ingest: Ingest | undefined;
  constructor(
    private readonly client: RegistryClient,
    private readonly store: Store,
    private readonly report: (n: number) => void,
  ) {}

  async fetch(endpoint: Endpoint, path: string, scopes: string[]): Promise<number> {
    this.ingest ??= await this.store.ingests.create();
    let offset = await this.ingest.size();
    const res = await this.client.request(endpoint, { method: 'GET', path, headers: offset > 0 ? { range: `bytes=${offset}-` } : {}, scopes, followRedirects: true });
    if (res.status === 404) {
      discard(res);
      return -1;
    }
    if (offset > 0 && (res.status !== 206 || rangeStart(res) !== offset)) {
      await this.ingest.cancel(); // the server ignored the range: start over
      this.ingest = await this.store.ingests.create();
      offset = 0;
      if (res.status === 206) {
        discard(res);
        throw new TruncatedError('the registry answered a range request from the wrong offset');
      }
    }
    const counter = new Counter(offset, this.report);
    endCleanly(res.body, counter);
    await this.ingest.append(counter, { handOver: true }); // response-body chunks pass through Counter and are used by nobody else
    return this.ingest.size();
  }

  async commit(digest: Digest, size: number): Promise<void> {
    const ingest = this.ingest;
    this.ingest = undefined;
    if (!ingest) throw new RegistryClientError(`nothing was downloaded for ${digest}`);
    await ingest.commit(digest, size);
  }

  async cancel(): Promise<void> {
    await this.ingest?.cancel().catch(() => undefined);
    this.ingest = undefined;
  }
}

function revive(e: SerializedError): Error {
  if (e.name === 'DigestMismatchError') return new DigestMismatchError('', e.actual ?? 'other content');
  const error = new RegistryClientError(e.message);
  return Object.assign(error, e.code ? { code: e.code } : {});
}

class WorkerSink implements BlobSink {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (r: WorkerReply) => void; reject: (e: Error) => void }>();
  private lastSize = 0;

  constructor(
    private readonly client: RegistryClient,
    store: Store,
    report: (n: number) => void,
  ) {
    this.worker = new Worker(new URL('./blob-worker.js', import.meta.url), { workerData: { root: store.root, transport: client.transportOptions } });
    this.worker.on('message', (reply: WorkerReply) => {
      if (reply.type === 'progress') return report(reply.bytes);
      const w = this.waiting.get(reply.id);
      this.waiting.delete(reply.id);
      w?.resolve(reply);
    });
    const die = (e: Error) => {
      this.dead ??= e;
      for (const w of this.waiting.values()) w.reject(e);
      this.waiting.clear();
    };
    this.worker.on('error', die);
    this.worker.on('exit', (code) => die(new RegistryClientError(`the download worker exited (code ${code})`)));
  }

  private dead: Error | undefined;

  private call(msg: WithoutId<WorkerRequest>): Promise<WorkerReply> {
    const id = this.nextId++;
    if (this.dead) return Promise.reject(this.dead);
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ ...msg, id });
    });
  }

  async fetch(endpoint: Endpoint, path: string, scopes: string[]): Promise<number> {
    let streamError: SerializedError | undefined;
    const via = {
      request: async (req: HttpRequest): Promise<HttpResponse> => {
        const reply = await this.call({ type: 'fetch', url: req.url.toString(), headers: req.headers ?? {}, verifyTls: req.verifyTls !== false });
        if (reply.type === 'error') throw revive(reply.error);
        if (reply.type !== 'response') throw new RegistryClientError('unexpected answer from the download worker');
        this.lastSize = reply.size;
        streamError = reply.streamError;
        return { status: reply.status, headers: reply.headers, url: req.url, body: Readable.from(reply.body ? [Buffer.from(reply.body)] : []) as unknown as IncomingMessage };
      },
    };
    const res = await this.client.request(endpoint, { method: 'GET', path, scopes, followRedirects: true, via });
    discard(res);
    if (res.status === 404) return -1;
    if (streamError) throw revive(streamError);
    return this.lastSize;
  }

  async commit(digest: Digest, size: number): Promise<void> {
    const reply = await this.call({ type: 'commit', digest, size });
    if (reply.type === 'error') {
      if (reply.error.name === 'SizeMismatchError') throw new SizeMismatchError(size, -1);
      throw revive(reply.error);
    }
  }

  async cancel(): Promise<void> {
    await this.call({ type: 'cancel' }).catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

/**
 * Downloads one blob into the store from the first endpoint that has it with the right bytes. A cut
 * connection resumes with a Range request where the bytes stopped; content that does not hash to the
 * digest is discarded and the next endpoint is asked.
 */
export async function fetchBlob(client: RegistryClient, store: Store, ref: Pick<Reference, 'registry' | 'repository'>, desc: Descriptor, endpoints?: Endpoint[]): Promise<void> {
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
      if (list.length > 1) client.onProgress?.({ type: 'notice', message: `blob ${desc.digest.slice(7, 19)} from ${describeEndpoint(endpoint)} failed: ${(e as Error).message}` });
    }
  }
  if (notFound === list.length) throw new NotFoundError(`blob ${desc.digest} in ${ref.registry}/${ref.repository}`);
  throw lastError;
}

async function downloadFrom(client: RegistryClient, store: Store, endpoint: Endpoint, repository: string, desc: Descriptor): Promise<void> {
  const repo = endpointRepository(endpoint, repository);
  const path = `/v2/${repo}/blobs/${desc.digest}`;
  const where = `${describeEndpoint(endpoint)}${path}`;
  const progress = (phase: 'downloading' | 'retrying' | 'done', current: number, note?: string) =>
    client.onProgress?.({ type: 'blob', digest: desc.digest, mediaType: desc.mediaType, phase, current, total: desc.size, ...(note ? { note } : {}) });
  const report = (n: number) => progress('downloading', n);
  const useWorker = desc.size >= client.workerThreshold && store.driver instanceof FilesystemDriver;
  const sink: BlobSink & { close?(): Promise<void> } = useWorker ? new WorkerSink(client, store, report) : new LocalSink(client, store, report);
  const scopes = [repositoryScope(repo, ['pull'])];
  try {
    progress('downloading', 0);
    for (let attempt = 0; ; ) {
      try {
        const size = await sink.fetch(endpoint, path, scopes);
        if (size < 0) throw new NotFoundError(`blob ${desc.digest}`, `${describeEndpoint(endpoint)} does not have it`);
        if (size > desc.size) throw new ContentDigestError(where, desc.digest, `more bytes than the ${desc.size} the descriptor says`);
        if (size < desc.size) throw new TruncatedError(`${where} ended after ${size} of ${desc.size} bytes`);
        break;
      } catch (e) {
        if (e instanceof ContentDigestError || e instanceof NotFoundError) throw e;
        const retryable = isTransient(e) || e instanceof TruncatedError || /aborted|closed|socket|premature/i.test((e as Error).message);
        if (!retryable) throw e;
        if (attempt >= client.retry.retries) throw new RegistryClientError(`download of ${desc.digest} from ${where} kept failing: ${(e as Error).message}`);
        progress('retrying', 0, (e as Error).message);
        await sleep(backoffDelay(client.retry, attempt++));
      }
    }
    try {
      await sink.commit(desc.digest, desc.size);
    } catch (e) {
      if (e instanceof DigestMismatchError) throw new ContentDigestError(where, desc.digest, e.actual);
      if (e instanceof SizeMismatchError) throw new ContentDigestError(where, desc.digest, `a different size than ${desc.size} bytes`);
      throw e;
    }
    progress('done', desc.size);
  } catch (e) {
    await sink.cancel();
    throw e;
  } finally {
    await sink.close?.();
  }
}
