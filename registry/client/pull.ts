import {
  defaultPlatform,
  familiarReference,
  formatReference,
  isIndexMediaType,
  mapLimit,
  parseNormalized,
  type Descriptor,
  type Digest,
  type Platform,
  type Reference,
} from '../../oci/index.js';
import { selectPlatform, type Store } from '../../store/index.js';
import { BlobSources } from './blob-sources.js';
import { fetchBlob } from './blob-fetch.js';
import type { RegistryClient } from './client.js';
import { ContentDigestError, RegistryClientError } from './errors.js';
import { describeEndpoint } from './hosts.js';
import { fetchManifest } from './manifest.js';

export interface PullOptions {
  /** The platform to pick from an index; default linux on this machine's architecture (linux/amd64 here). */
  platform?: Platform;
  /** Name the image in the local image index (default true). */
  name?: boolean;
}

export interface PullResult {
  reference: Reference;
  /** The platform manifest the local name points at. */
  digest: Digest;
  mediaType: string;
  /** The index the reference resolved to, when it was one. */
  indexDigest?: Digest;
  config: Descriptor;
  layers: Descriptor[];
  /** Bytes fetched over the network (blobs already in the store are skipped). */
  downloadedBytes: number;
}

/**
 * Pulls an image into the store: manifest (picking a platform from an index), then config and layers
 * in parallel, each verified; the manifest is stored last so a stored manifest implies its blobs.
 */
export async function pullImage(client: RegistryClient, store: Store, input: string | Reference, options: PullOptions = {}): Promise<PullResult> {
  const ref = typeof input === 'string' ? parseNormalized(input) : input;
  const endpoints = await client.endpoints(ref.registry);
  const top = await fetchManifest(client, ref, endpoints);
  client.onProgress?.({ type: 'resolved', reference: familiarReference(ref), digest: top.digest, endpoint: describeEndpoint(top.endpoint) });
  // Prefer the endpoint that answered; the others stay as fall-backs for blobs it lacks or corrupts.
  const ordered = [top.endpoint, ...endpoints.filter((e) => e !== top.endpoint)];
  let manifest = top;
  let indexDigest: Digest | undefined;
  if (top.document.kind === 'index') {
    indexDigest = top.digest;
    const chosen = selectPlatform(top.document.index, options.platform ?? defaultPlatform());
    manifest = await fetchManifest(client, ref, ordered, chosen.digest);
    if (manifest.digest !== chosen.digest) throw new ContentDigestError(familiarReference(ref), chosen.digest, manifest.digest);
    // The index entry's media type must name what was fetched (containerd's check): an entry saying
    // "manifest" that fetches an index, or the reverse, is read differently by different clients.
    if (isIndexMediaType(chosen.mediaType) !== (manifest.document.kind === 'index')) {
      throw new RegistryClientError(`${familiarReference(ref)}: the index lists ${chosen.digest} as ${chosen.mediaType}, but it is ${manifest.mediaType}`);
    }
  }
  if (manifest.document.kind !== 'manifest') throw new RegistryClientError(`${familiarReference(ref)} (${manifest.digest}) is not an image manifest`);
  const doc = manifest.document.manifest;
  const blobs = [doc.config, ...doc.layers];
  let downloadedBytes = 0;
  for (const b of blobs) client.onProgress?.({ type: 'blob', digest: b.digest, mediaType: b.mediaType, phase: 'waiting', current: 0, total: b.size });
  await mapLimit(blobs, client.concurrency, async (desc) => {
    if (await store.blobs.has(desc.digest)) {
      client.onProgress?.({ type: 'blob', digest: desc.digest, mediaType: desc.mediaType, phase: 'exists', current: desc.size, total: desc.size });
      return;
    }
    await fetchBlob(client, store, ref, desc, ordered);
    downloadedBytes += desc.size;
  });
  await store.blobs.put(manifest.bytes, { digest: manifest.digest });
  if (indexDigest) await store.blobs.put(top.bytes, { digest: top.digest });
  if (options.name !== false) await store.images.set(ref, manifest.digest, manifest.mediaType);
  client.onProgress?.({ type: 'manifest', reference: formatReference(ref), digest: manifest.digest });
  const sources = await BlobSources.open(store);
  await sources.add(blobs.map((b) => ({ digest: b.digest, repository: `${ref.registry}/${ref.repository}` })));
  return {
    reference: ref,
    digest: manifest.digest,
    mediaType: manifest.mediaType,
    ...(indexDigest ? { indexDigest } : {}),
    config: doc.config,
    layers: doc.layers,
    downloadedBytes,
  };
}
