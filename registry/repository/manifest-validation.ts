import { isDigest, MediaType, type Descriptor, type Digest } from '../../oci/index.js';
import { RegistryError } from './errors.js';

/** What the registry accepts on manifest PUT; schema 1 is long deprecated and never accepted. */
export const ACCEPTED_MANIFEST_TYPES: readonly string[] = [MediaType.ociManifest, MediaType.ociIndex, MediaType.dockerManifest, MediaType.dockerManifestList];

export interface ParsedManifest {
  mediaType: string;
  kind: 'manifest' | 'index';
  /** Blobs it needs in the repository (config and layers). */
  blobs: Descriptor[];
  /** Manifests it needs in the repository (an index's entries). */
  manifests: Descriptor[];
  subject?: Descriptor;
  /** The artifact type the referrers API lists for it. */
  artifactType?: string;
  annotations?: Record<string, string>;
}

function invalid(message: string, detail?: unknown): RegistryError {
  return new RegistryError('MANIFEST_INVALID', message, detail);
}

function checkDescriptor(value: unknown, where: string): Descriptor {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(`${where} is not a descriptor object`);
  const d = value as Record<string, unknown>;
  if (typeof d.mediaType !== 'string' || d.mediaType === '') throw invalid(`${where}.mediaType is missing`);
  if (typeof d.digest !== 'string' || !isDigest(d.digest)) throw invalid(`${where}.digest is not a valid digest`, { digest: String(d.digest).slice(0, 200) });
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) throw invalid(`${where}.size is not a non-negative integer`);
  if (d.urls !== undefined && (!Array.isArray(d.urls) || d.urls.some((u) => typeof u !== 'string'))) throw invalid(`${where}.urls is not a list of strings`);
  return d as unknown as Descriptor;
}

function mediaTypeOf(contentType: string | undefined): string | undefined {
  const mt = contentType?.split(';')[0]?.trim().toLowerCase();
  return mt === '' ? undefined : mt;
}

/**
 * Parses a pushed manifest: valid JSON object, a supported media type that agrees between the
 * Content-Type header and the body's `mediaType`, and the shape of its kind. Never converts anything.
 */
export function parseManifest(bytes: Buffer, contentType: string | undefined): ParsedManifest {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw invalid(`manifest is not valid JSON: ${(e as Error).message.slice(0, 200)}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw invalid('manifest is not a JSON object');
  const m = doc as Record<string, unknown>;
  const header = mediaTypeOf(contentType);
  const body = typeof m.mediaType === 'string' ? m.mediaType : undefined;
  if (m.mediaType !== undefined && body === undefined) throw invalid('manifest mediaType is not a string');
  // Clients that send no Content-Type (or a generic one) are judged by the body's own mediaType.
  const generic = header === undefined || header === 'application/json' || header === 'application/octet-stream';
  if (!generic && body !== undefined && header !== body) {
    throw invalid(`Content-Type ${header} does not match the manifest's mediaType ${body}`, { contentType: header, mediaType: body });
  }
  let mediaType = generic ? body : header;
  if (mediaType === undefined) {
    // An OCI manifest may omit mediaType; only the header can tell what it is then.
    throw invalid('manifest media type unknown: send Content-Type or a mediaType field');
  }
  if (mediaType === MediaType.dockerSchema1 || mediaType === MediaType.dockerSchema1Signed || m.schemaVersion === 1) {
    throw invalid('Docker schema 1 manifests are not supported; push a schema 2 or OCI manifest');
  }
  if (!ACCEPTED_MANIFEST_TYPES.includes(mediaType)) throw invalid(`unsupported manifest media type ${mediaType.slice(0, 200)}`, { mediaType: mediaType.slice(0, 200) });
  if (m.schemaVersion !== 2) throw invalid('manifest schemaVersion must be 2');
  if ((mediaType === MediaType.dockerManifest || mediaType === MediaType.dockerManifestList) && body === undefined) {
    throw invalid(`a Docker manifest must carry mediaType ${mediaType} in its body`);
  }
  const subject = m.subject !== undefined ? checkDescriptor(m.subject, 'subject') : undefined;
  if (m.artifactType !== undefined && typeof m.artifactType !== 'string') throw invalid('artifactType is not a string');
  const annotations = m.annotations as Record<string, string> | undefined;
  if (mediaType === MediaType.ociIndex || mediaType === MediaType.dockerManifestList) {
    if (!Array.isArray(m.manifests)) throw invalid('index has no manifests list');
    if (m.config !== undefined || m.layers !== undefined) throw invalid('an index must not have config or layers');
    const manifests = m.manifests.map((d, i) => checkDescriptor(d, `manifests[${i}]`));
    return { mediaType, kind: 'index', blobs: [], manifests, subject, artifactType: m.artifactType as string | undefined, annotations };
  }
  if (m.manifests !== undefined) throw invalid('an image manifest must not have a manifests list');
  const config = checkDescriptor(m.config, 'config');
  if (!Array.isArray(m.layers)) throw invalid('manifest has no layers list');
  const layers = m.layers.map((d, i) => checkDescriptor(d, `layers[${i}]`));
  // Per the image spec: artifactType, else the config's media type names what an artifact is.
  const artifactType = (m.artifactType as string | undefined) ?? config.mediaType;
  return { mediaType, kind: 'manifest', blobs: [config, ...layers], manifests: [], subject, artifactType, annotations };
}

/** What checkReferences needs to know of a repository: sizes of what it holds, undefined when absent. */
export interface ReferenceLookup {
  /** Size of a blob linked into the repository (pushed or mounted there). */
  blobSize(digest: Digest): Promise<number | undefined>;
  /** Size of a manifest the repository holds. */
  manifestSize(digest: Digest): Promise<number | undefined>;
}

/**
 * Every blob and manifest a pushed manifest references must already be in this repository (distribution
 * answers MANIFEST_BLOB_UNKNOWN too); sizes must agree with what is stored. Layers with external
 * `urls` (non-distributable) are exempt, as distribution does.
 */
export async function checkReferences(repository: ReferenceLookup, name: string, parsed: ParsedManifest): Promise<void> {
  const missing = (d: Descriptor) => new RegistryError('MANIFEST_BLOB_UNKNOWN', `manifest references ${d.digest}, which is not in repository ${name}`, { digest: d.digest });
  await Promise.all([
    ...parsed.blobs.map(async (d) => {
      if (d.urls && d.urls.length > 0) return;
      const size = await repository.blobSize(d.digest as Digest);
      if (size === undefined) throw missing(d);
      if (size !== d.size) throw invalid(`descriptor size ${d.size} of ${d.digest} differs from the stored blob (${size} bytes)`, { digest: d.digest });
    }),
    ...parsed.manifests.map(async (d) => {
      const size = await repository.manifestSize(d.digest as Digest);
      if (size === undefined) throw missing(d);
      if (size !== d.size) throw invalid(`descriptor size ${d.size} of ${d.digest} differs from the stored manifest (${size} bytes)`, { digest: d.digest });
    }),
  ]);
}
