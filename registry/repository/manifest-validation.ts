import { ImageDocumentError, MediaType, parseImageDocument, type Descriptor, type Digest, type ImageDocument } from '../../oci/index.js';
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
  subject?: Descriptor | undefined;
  /** The artifact type the referrers API lists for it. */
  artifactType?: string | undefined;
  annotations?: Record<string, string> | undefined;
}

function invalid(message: string, detail?: unknown): RegistryError {
  return new RegistryError('MANIFEST_INVALID', message, detail);
}

/**
 * Parses a pushed manifest with oci/'s image document parser (the rules every Go client reads a manifest
 * by: case-variant and duplicate keys, integer literals, types, ambiguity between manifest and index,
 * body mediaType against Content-Type, schema 1 refused), answering MANIFEST_INVALID with the field's path.
 * Never converts anything.
 */
export function parseManifest(bytes: Buffer, contentType: string | undefined): ParsedManifest {
  let doc: ImageDocument;
  try {
    doc = parseImageDocument(bytes, { mediaType: contentType, inferMediaType: false });
  } catch (e) {
    if (e instanceof ImageDocumentError) throw invalid(`manifest invalid: ${e.message}`, e.field ? { field: e.field } : undefined);
    throw e;
  }
  const { mediaType } = doc;
  if (doc.kind === 'index') {
    const { manifests, subject, artifactType, annotations } = doc.index;
    return { mediaType, kind: 'index', blobs: [], manifests, subject, artifactType, annotations };
  }
  const { config, layers, subject, annotations } = doc.manifest;
  // Per the image spec: artifactType, else the config's media type names what an artifact is.
  const artifactType = doc.manifest.artifactType ?? config.mediaType;
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
  const missing = (d: Descriptor) =>
    new RegistryError('MANIFEST_BLOB_UNKNOWN', `manifest references ${d.digest}, which is not in repository ${name}`, { digest: d.digest });
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
