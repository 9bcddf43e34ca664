import { createReadStream } from 'node:fs';
import { Transform, type TransformCallback } from 'node:stream';
import {
  familiarReference,
  formatReference,
  ImageDocumentError,
  mapLimit,
  parseImageDocument,
  parseNormalized,
  type Descriptor,
  type Digest,
  type ImageDocument,
  type Reference,
} from '../../oci/index.js';
import type { Store } from '../../store/index.js';
import { repositoryScope } from './auth.js';
import { BlobSources } from './blob-sources.js';
import type { RegistryClient } from './client.js';
import { RegistryClientError, isTransient } from './errors.js';
import type { Endpoint } from './hosts.js';
import { backoffDelay, sleep } from './retry.js';
import { discard, header } from './transport.js';

export interface PushOptions {
  /** Upload blobs in PATCH chunks of this many bytes (for registries that limit request sizes); default: one streamed PUT. */
  chunkSize?: number;
  /** Repositories (`registry/repo`) to try mounting blobs from, besides those recorded from earlier pulls and pushes. */
  mountFrom?: string[];
}

export interface PushResult {
  /** The manifest (or index) digest pushed. */
  digest: Digest;
  mediaType: string;
  /** Every reference written (tags, or name@digest). */
  pushed: string[];
  uploaded: number;
  mounted: number;
  existing: number;
  uploadedBytes: number;
}

interface Document {
  digest: Digest;
  mediaType: string;
  bytes: Buffer;
}

/** The blobs and child manifests of an image or index in the store (children first). */
async function collect(store: Store, digest: Digest, mediaType: string): Promise<{ blobs: Descriptor[]; manifests: Document[] }> {
  const bytes = await store.blobs.readBuffer(digest);
  let doc: ImageDocument;
  try {
    doc = parseImageDocument(bytes, { mediaType });
  } catch (e) {
    if (e instanceof ImageDocumentError) throw new RegistryClientError(`cannot push ${digest}: ${e.message}`);
    throw e;
  }
  if (doc.kind === 'index') {
    const blobs: Descriptor[] = [];
    const manifests: Document[] = [];
    for (const m of doc.index.manifests) {
      if (!(await store.blobs.has(m.digest))) {
        throw new RegistryClientError(
          `cannot push index ${digest}: its manifest ${m.digest} (${m.platform ? `${m.platform.os}/${m.platform.architecture}` : 'no platform'}) is not in the local store`,
        );
      }
      const inner = await collect(store, m.digest, m.mediaType);
      blobs.push(...inner.blobs);
      manifests.push(...inner.manifests);
    }
    manifests.push({ digest, mediaType: doc.mediaType, bytes });
    return { blobs, manifests };
  }
  return { blobs: [doc.manifest.config, ...doc.manifest.layers], manifests: [{ digest, mediaType: doc.mediaType, bytes }] };
}

class UploadCounter extends Transform {
  constructor(private readonly report: (n: number) => void) {
    super({ highWaterMark: 1 << 20 });
  }
  private count = 0;
  private last = 0;
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.count += chunk.length;
    if (Date.now() - this.last > 100) {
      this.last = Date.now();
      this.report(this.count);
    }
    cb(null, chunk);
  }
}

/**
 * Pushes a local image to one or more references. Blobs go once per repository (skipped when the
 * registry has them, mounted from another repository of the same registry when possible), manifests last.
 */
export async function pushImage(
  client: RegistryClient,
  store: Store,
  source: string,
  destinations?: string | string[],
  options: PushOptions = {},
): Promise<PushResult> {
  const record = await store.images.get(source);
  const targets: Reference[] = (Array.isArray(destinations) ? destinations : destinations ? [destinations] : []).map((d) => parseNormalized(d));
  if (!targets.length) {
    try {
      targets.push(parseNormalized(source));
    } catch {
      throw new RegistryClientError(`"${source}" is not a name to push to; give a destination: tsbuild push ${source} REGISTRY/REPOSITORY:TAG`);
    }
  }
  for (const t of targets)
    if (t.digest && t.digest !== record.digest)
      throw new RegistryClientError(`cannot push ${source} as ${familiarReference(t)}: the image's digest is ${record.digest}`);
  const { blobs, manifests } = await collect(store, record.digest, record.mediaType);
  const unique = [...new Map(blobs.map((b) => [b.digest, b])).values()];
  const sources = await BlobSources.open(store);
  const result: PushResult = { digest: record.digest, mediaType: record.mediaType, pushed: [], uploaded: 0, mounted: 0, existing: 0, uploadedBytes: 0 };
  // One pass per repository; tags of the same repository share it.
  const byRepo = new Map<string, Reference[]>();
  for (const t of targets) byRepo.set(`${t.registry}/${t.repository}`, [...(byRepo.get(`${t.registry}/${t.repository}`) ?? []), t]);
  for (const [repoName, refs] of byRepo) {
    const ref = refs[0]!;
    const [endpoint] = await client.endpoints(ref.registry, { mirrors: false });
    await mapLimit(unique, client.concurrency, async (desc) => {
      const known = [...(options.mountFrom ?? []), ...(await sources.get(desc.digest))];
      const candidates = known.filter((r) => r !== repoName && r.startsWith(`${ref.registry}/`)).map((r) => r.slice(ref.registry.length + 1));
      const how = await pushBlob(client, store, endpoint!, ref.repository, desc, candidates, options);
      if (how === 'exists') result.existing++;
      else if (how === 'mounted') result.mounted++;
      else {
        result.uploaded++;
        result.uploadedBytes += desc.size;
      }
    });
    await sources.add(unique.map((b) => ({ digest: b.digest, repository: repoName })));
    for (const m of manifests.slice(0, -1)) await putManifest(client, endpoint!, ref.repository, m, m.digest);
    const top = manifests[manifests.length - 1]!;
    for (const r of refs) {
      await putManifest(client, endpoint!, ref.repository, top, r.tag ?? top.digest);
      const pushedRef = r.tag
        ? formatReference({ registry: r.registry, repository: r.repository, tag: r.tag })
        : formatReference({ registry: r.registry, repository: r.repository, digest: top.digest });
      result.pushed.push(pushedRef);
      client.onProgress?.({ type: 'manifest', reference: pushedRef, digest: top.digest });
    }
  }
  return result;
}

async function putManifest(client: RegistryClient, endpoint: Endpoint, repository: string, doc: Document, reference: string): Promise<void> {
  const res = await client.request(endpoint, {
    method: 'PUT',
    path: `/v2/${repository}/manifests/${reference}`,
    headers: { 'content-type': doc.mediaType },
    body: doc.bytes,
    scopes: [repositoryScope(repository, ['pull', 'push'])],
    accept: [201, 200, 202],
  });
  discard(res);
  const returned = header(res, 'docker-content-digest');
  if (returned && returned !== doc.digest)
    throw new RegistryClientError(`${endpoint.host} stored the manifest for ${repository}:${reference} as ${returned}, not ${doc.digest}`);
}

/** Pushes one blob: HEAD (skip), else mount from a sibling repository, else upload. */
async function pushBlob(
  client: RegistryClient,
  store: Store,
  endpoint: Endpoint,
  repository: string,
  desc: Descriptor,
  mountCandidates: string[],
  options: PushOptions,
): Promise<'exists' | 'mounted' | 'uploaded'> {
  const event = (phase: 'exists' | 'mounted' | 'uploading' | 'retrying' | 'done', current: number, note?: string) =>
    client.onProgress?.({ type: 'blob', digest: desc.digest, mediaType: desc.mediaType, phase, current, total: desc.size, ...(note ? { note } : {}) });
  const pushScope = repositoryScope(repository, ['pull', 'push']);
  const head = await client.request(endpoint, { method: 'HEAD', path: `/v2/${repository}/blobs/${desc.digest}`, scopes: [pushScope] });
  discard(head);
  if (head.status === 200) {
    event('exists', desc.size);
    return 'exists';
  }
  if (!(await store.blobs.has(desc.digest)))
    throw new RegistryClientError(`cannot push ${desc.digest}: the blob is not in the local store and ${endpoint.host}/${repository} does not have it`);
  for (let attempt = 0; ; attempt++) {
    let location: string | undefined;
    for (const from of mountCandidates.slice(0, 3)) {
      const res = await client
        .request(endpoint, {
          method: 'POST',
          path: `/v2/${repository}/blobs/uploads/?mount=${encodeURIComponent(desc.digest)}&from=${encodeURIComponent(from)}`,
          scopes: [pushScope, repositoryScope(from, ['pull'])],
          accept: [201, 202],
        })
        .catch(() => undefined);
      if (!res) continue;
      discard(res);
      if (res.status === 201) {
        event('mounted', desc.size, `from ${from}`);
        return 'mounted';
      }
      if (res.status === 202) {
        location = header(res, 'location');
        break;
      }
    }
    if (!location) {
      const res = await client.request(endpoint, { method: 'POST', path: `/v2/${repository}/blobs/uploads/`, scopes: [pushScope], accept: [202] });
      discard(res);
      location = header(res, 'location');
      if (res.status !== 202 || !location) throw new RegistryClientError(`${endpoint.host} did not start an upload for ${repository} (HTTP ${res.status})`);
    }
    try {
      await upload(client, store, endpoint, location, desc, options, [pushScope], (n) => event('uploading', n));
      event('done', desc.size);
      return 'uploaded';
    } catch (e) {
      if (!isTransient(e) || attempt >= client.retry.retries) throw e;
      event('retrying', 0, (e as Error).message);
      await sleep(backoffDelay(client.retry, attempt));
    }
  }
}

async function upload(
  client: RegistryClient,
  store: Store,
  endpoint: Endpoint,
  location: string,
  desc: Descriptor,
  options: PushOptions,
  scopes: string[],
  report: (n: number) => void,
): Promise<void> {
  const origin = await client.endpointOrigin(endpoint);
  let url = new URL(location, origin);
  const counted = async (start?: number, end?: number) => {
    const file = store.blobFile(desc.digest);
    const raw = file
      ? createReadStream(file, { highWaterMark: 1 << 20, ...(start !== undefined ? { start, end: end! - 1 } : {}) })
      : await store.blobs.read(desc.digest, start !== undefined ? { start, end: end! - 1 } : undefined);
    const counter = new UploadCounter((n) => report((start ?? 0) + n));
    raw.once('error', (e: Error) => counter.destroy(e));
    return raw.pipe(counter);
  };
  if (options.chunkSize && desc.size > options.chunkSize) {
    for (let start = 0; start < desc.size; start += options.chunkSize) {
      const end = Math.min(desc.size, start + options.chunkSize);
      const res = await client.request(endpoint, {
        method: 'PATCH',
        path: url.toString(),
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(end - start), 'content-range': `${start}-${end - 1}` },
        body: () => counted(start, end),
        scopes,
        accept: [202],
        noRetry: true,
      });
      discard(res);
      const next = header(res, 'location');
      if (next) url = new URL(next, origin);
    }
    url.searchParams.set('digest', desc.digest);
    const res = await client.request(endpoint, {
      method: 'PUT',
      path: url.toString(),
      headers: { 'content-length': '0' },
      scopes,
      accept: [201, 204],
      noRetry: true,
    });
    discard(res);
    return;
  }
  url.searchParams.set('digest', desc.digest);
  const res = await client.request(endpoint, {
    method: 'PUT',
    path: url.toString(),
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(desc.size) },
    body: () => counted(),
    scopes,
    accept: [201, 204],
    noRetry: true,
  });
  discard(res);
}
