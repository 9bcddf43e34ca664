import { Transform, type TransformCallback, pipeline } from 'node:stream';
import type { Descriptor, Reference } from '../../oci/index.js';
import { DigestMismatchError, SizeMismatchError, type Ingest, type Store } from '../../store/index.js';
import { repositoryScope } from './auth.js';
import type { RegistryClient } from './client.js';
import { ContentDigestError, NotFoundError, RegistryClientError, isTransient } from './errors.js';
import { describeEndpoint, endpointRepository, type Endpoint } from './hosts.js';
import { backoffDelay, sleep } from './retry.js';
import { discard, header, type HttpResponse } from './transport.js';

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

class TruncatedError extends Error {
  readonly code = 'TRUNCATED';
}

/** Where a Range answer starts (`Content-Range: bytes 100-199/200`). */
function rangeStart(res: HttpResponse): number | undefined {
  const m = /^bytes (\d+)-/.exec(header(res, 'content-range') ?? '');
  return m ? Number(m[1]) : undefined;
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
  let ingest: Ingest = await store.ingests.create();
  try {
    for (let attempt = 0; ; ) {
      let offset = await ingest.size();
      const res = await client.request(endpoint, {
        method: 'GET',
        path,
        headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
        scopes: [repositoryScope(repo, ['pull'])],
        followRedirects: true,
      });
      if (res.status === 404) {
        discard(res);
        throw new NotFoundError(`blob ${desc.digest}`, `${describeEndpoint(endpoint)} does not have it`);
      }
      if (offset > 0 && (res.status !== 206 || rangeStart(res) !== offset)) {
        // The server ignored the range: start over with a fresh ingest.
        await ingest.cancel();
        ingest = await store.ingests.create();
        offset = 0;
        if (res.status === 206) {
          discard(res);
          continue;
        }
      }
      progress('downloading', offset);
      const counter = new Counter(offset, (n) => progress('downloading', n));
      counter.on('error', () => undefined); // reported through ingest.append
      pipeline(res.body, counter, () => undefined);
      try {
        const size = await ingest.append(counter);
        if (size < desc.size) throw new TruncatedError(`${where} ended after ${size} of ${desc.size} bytes`);
        if (size > desc.size) throw new ContentDigestError(where, desc.digest, `more bytes than the ${desc.size} the descriptor says`);
        break;
      } catch (e) {
        if (e instanceof ContentDigestError) throw e;
        if (!isTransient(e) && !(e instanceof TruncatedError) && !/aborted|closed|socket/i.test((e as Error).message)) throw e;
        if (attempt >= client.retry.retries) throw new RegistryClientError(`download of ${desc.digest} from ${where} kept failing: ${(e as Error).message}`);
        progress('retrying', await ingest.size(), (e as Error).message);
        await sleep(backoffDelay(client.retry, attempt++));
      }
    }
    try {
      await ingest.commit(desc.digest, desc.size);
    } catch (e) {
      if (e instanceof DigestMismatchError) throw new ContentDigestError(where, desc.digest, e.actual);
      if (e instanceof SizeMismatchError) throw new ContentDigestError(where, desc.digest, `${e.actual} bytes instead of ${e.expected}`);
      throw e;
    }
    progress('done', desc.size);
  } catch (e) {
    await ingest.cancel().catch(() => undefined);
    throw e;
  }
}
