import {
  ImageDocumentError,
  MediaType,
  digestOf,
  familiarReference,
  imageDocumentMediaTypes,
  parseImageDocument,
  type Digest,
  type ImageDocument,
  type Reference,
} from '../../oci/index.js';
import { repositoryScope } from './auth.js';
import type { RegistryClient } from './client.js';
import { ContentDigestError, NotFoundError, RegistryClientError } from './errors.js';
import { describeEndpoint, endpointRepository, type Endpoint } from './hosts.js';
import { discard, header, readBody } from './transport.js';

/** Every manifest type tsbuild understands, OCI and Docker, images and indexes. */
export const manifestAccept = [MediaType.ociIndex, MediaType.ociManifest, MediaType.dockerManifestList, MediaType.dockerManifest].join(', ');

export interface FetchedManifest {
  digest: Digest;
  mediaType: string;
  bytes: Buffer;
  /** The document as every Go client reads it (oci/image-document.ts); ambiguous ones are refused. */
  document: ImageDocument;
  /** Where it came from (a mirror or the registry). */
  endpoint: Endpoint;
}

const MAX_MANIFEST = 4 * 1024 * 1024;

/** Whether an endpoint's failure should make us try the next endpoint. */
function failureText(e: unknown): string {
  return (e as Error)?.message ?? String(e);
}

/**
 * Fetches a manifest or index by tag or digest, trying the endpoints in order (mirrors, then the registry).
 * Content fetched by digest — or whose Docker-Content-Digest header disagrees with its bytes — is verified.
 */
export async function fetchManifest(
  client: RegistryClient,
  ref: Reference,
  endpoints?: Endpoint[],
  reference: string | undefined = ref.digest ?? ref.tag,
): Promise<FetchedManifest> {
  if (!reference) throw new RegistryClientError(`reference ${familiarReference(ref)} has neither a tag nor a digest`);
  const list = endpoints ?? (await client.endpoints(ref.registry));
  let notFound = false;
  let lastError: unknown;
  for (const endpoint of list) {
    const repository = endpointRepository(endpoint, ref.repository);
    try {
      const res = await client.request(endpoint, {
        method: 'GET',
        path: `/v2/${repository}/manifests/${reference}`,
        headers: { accept: manifestAccept },
        scopes: [repositoryScope(repository, ['pull'])],
      });
      if (res.status === 404) {
        discard(res);
        notFound = true;
        continue;
      }
      const bytes = await readBody(res, MAX_MANIFEST);
      const expected = reference.includes(':') ? (reference as Digest) : (header(res, 'docker-content-digest') as Digest | undefined);
      const algorithm = expected?.split(':')[0] ?? 'sha256';
      const digest = digestOf(bytes, algorithm === 'sha512' ? 'sha512' : 'sha256');
      if (expected && expected !== digest)
        throw new ContentDigestError(`${describeEndpoint(endpoint)}/v2/${repository}/manifests/${reference}`, expected, digest);
      // A Content-Type that names an image document type must agree with the body (containerd's and
      // skopeo's check); anything else (application/json, text/plain from a plain file server) says nothing.
      const contentType = (header(res, 'content-type') ?? '').split(';')[0]!.trim().toLowerCase();
      const declared =
        imageDocumentMediaTypes.includes(contentType) || contentType === MediaType.dockerSchema1 || contentType === MediaType.dockerSchema1Signed
          ? contentType
          : undefined;
      let document: ImageDocument;
      try {
        document = parseImageDocument(bytes, { mediaType: declared });
      } catch (e) {
        if (e instanceof ImageDocumentError)
          throw new RegistryClientError(`refusing the manifest of ${familiarReference(ref)} from ${describeEndpoint(endpoint)}: ${e.message}`);
        throw e;
      }
      const mediaType = document.mediaType;
      return { digest, mediaType, bytes, document, endpoint };
    } catch (e) {
      lastError = e;
      if (!endpoint.mirror) break;
      client.onProgress?.({
        type: 'notice',
        message: `${describeEndpoint(endpoint)} failed for ${familiarReference(ref)}: ${failureText(e)}; trying the next endpoint`,
      });
    }
  }
  if (notFound && (lastError === undefined || list[list.length - 1]?.mirror === false)) {
    throw new NotFoundError(familiarReference(ref), lastError ? failureText(lastError) : undefined);
  }
  throw lastError ?? new NotFoundError(familiarReference(ref));
}

export interface ManifestHead {
  digest: Digest;
  mediaType: string;
  size: number;
  endpoint: Endpoint;
}

/**
 * What a tag points at, without downloading the manifest (HEAD; registries answer with
 * Docker-Content-Digest). Falls back to a GET when a registry leaves the digest out.
 */
export async function headManifest(client: RegistryClient, ref: Reference, endpoints?: Endpoint[]): Promise<ManifestHead> {
  const reference = ref.digest ?? ref.tag;
  if (!reference) throw new RegistryClientError(`reference ${familiarReference(ref)} has neither a tag nor a digest`);
  const list = endpoints ?? (await client.endpoints(ref.registry));
  let lastError: unknown;
  for (const endpoint of list) {
    const repository = endpointRepository(endpoint, ref.repository);
    try {
      const res = await client.request(endpoint, {
        method: 'HEAD',
        path: `/v2/${repository}/manifests/${reference}`,
        headers: { accept: manifestAccept },
        scopes: [repositoryScope(repository, ['pull'])],
      });
      discard(res);
      if (res.status === 404) continue;
      const digest = header(res, 'docker-content-digest');
      if (!digest || (ref.digest && digest !== ref.digest)) break;
      return {
        digest: digest as Digest,
        mediaType: (header(res, 'content-type') ?? '').split(';')[0]!.trim(),
        size: Number(header(res, 'content-length') ?? 0),
        endpoint,
      };
    } catch (e) {
      lastError = e;
      if (!endpoint.mirror) throw e;
    }
  }
  void lastError;
  const full = await fetchManifest(client, ref, list);
  return { digest: full.digest, mediaType: full.mediaType, size: full.bytes.length, endpoint: full.endpoint };
}
