import { Buffer } from 'node:buffer';
import { digestAlgorithm, digestOf, isDigest, type Digest } from './digest.js';
import { GoStruct, JsonFieldError, childPath, fail, readArray, readInteger, readString, readStringList, readStringMap, readStruct } from './go-json.js';
import type { Descriptor, ImageIndex, ImageManifest, Platform } from './image-types.js';
import { JsonSyntaxError, jsonTypeName, parseJsonTree, type JsonNode } from './json-tree.js';
import { MediaType } from './media-types.js';

/**
 * A manifest or index read with the rules every Go client (docker, containerd, skopeo, distribution)
 * reads it by, so that what tsbuild sees is what they see.
 */
export type ImageDocument = { kind: 'manifest'; mediaType: string; manifest: ImageManifest } | { kind: 'index'; mediaType: string; index: ImageIndex };

/**
 * An image document that a Go client would read differently than tsbuild, or refuse. `field` is the
 * path of the offending value (`layers[2].size`, `manifests[0].platform.os`; empty for the whole document).
 */
export class ImageDocumentError extends Error {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(field ? `${field}: ${reason}` : reason);
    this.name = 'ImageDocumentError';
  }
}

export interface ImageDocumentOptions {
  /**
   * The media type the document came with: a Content-Type header, or the descriptor that pointed at it.
   * Parameters are ignored, and so are the generic `application/json` and `application/octet-stream`.
   * When given, a `mediaType` in the body must equal it.
   */
  mediaType?: string | undefined;
  /**
   * When neither `mediaType` nor the body names the type: false refuses the document (a registry must
   * know what it stores); true (the default) takes an OCI index if it has `manifests`, else an OCI image
   * manifest, as containers/image's GuessMIMEType does for schemaVersion 2.
   */
  inferMediaType?: boolean;
}

/** Media types of the image documents this parser reads (schema 1 is refused). */
export const imageDocumentMediaTypes: readonly string[] = [MediaType.ociManifest, MediaType.ociIndex, MediaType.dockerManifest, MediaType.dockerManifestList];

// The JSON names of the structs Go clients decode into, merged over the OCI image-spec v1.1 Go types
// (specs-go/v1 Manifest, Index, Descriptor, Platform), distribution's schema2.Manifest and
// manifestlist.ManifestList / ManifestDescriptor / PlatformSpec, and the detection structs of
// containerd (images.unknownDocument: fsLayers) and containers/image (manifest.validateUnambiguousManifestFormat:
// fsLayers, history). containerd reads Docker documents into the OCI types, so the union is what matters.
const TOP = new GoStruct(['schemaVersion', 'mediaType', 'artifactType', 'config', 'layers', 'manifests', 'subject', 'annotations', 'fsLayers', 'history']);
const DESCRIPTOR = new GoStruct(['mediaType', 'digest', 'size', 'urls', 'annotations', 'data', 'platform', 'artifactType']);
const PLATFORM = new GoStruct(['architecture', 'os', 'os.version', 'os.features', 'variant', 'features']);

const DOCKER_TYPES: readonly string[] = [MediaType.dockerManifest, MediaType.dockerManifestList];
const SCHEMA1_TYPES: readonly string[] = [MediaType.dockerSchema1, MediaType.dockerSchema1Signed];
const SHA256 = /^sha256:[a-f0-9]{64}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** A Content-Type's media type, or undefined when it says nothing (absent or generic). */
function declaredType(contentType: string | undefined): string | undefined {
  const mt = contentType?.split(';')[0]?.trim().toLowerCase();
  return mt === undefined || mt === '' || mt === 'application/json' || mt === 'application/octet-stream' ? undefined : mt;
}

function show(value: string): string {
  return JSON.stringify(value.length > 200 ? `${value.slice(0, 200)}…` : value);
}

function readPlatform(node: JsonNode | undefined, path: string): Platform | undefined {
  if (node === undefined) return undefined;
  const f = readStruct(node, path, PLATFORM, 'a platform');
  if (f === undefined) return undefined;
  // Absent or null is Go's zero value, "": read the same here.
  const platform: Platform = {
    architecture: readString(f.get('architecture'), childPath(path, 'architecture')) ?? '',
    os: readString(f.get('os'), childPath(path, 'os')) ?? '',
  };
  const osVersion = readString(f.get('os.version'), childPath(path, 'os.version'));
  if (osVersion !== undefined) platform['os.version'] = osVersion;
  const osFeatures = readStringList(f.get('os.features'), childPath(path, 'os.features'));
  if (osFeatures !== undefined) platform['os.features'] = osFeatures;
  const variant = readString(f.get('variant'), childPath(path, 'variant'));
  if (variant !== undefined) platform.variant = variant;
  const features = readStringList(f.get('features'), childPath(path, 'features'));
  if (features !== undefined) platform.features = features;
  return platform;
}

/**
 * A content descriptor (image-spec descriptor.md): mediaType, a valid digest and a non-negative size
 * are required; `data`, when present, must be the base64 of exactly the described bytes.
 */
function readDescriptor(node: JsonNode | undefined, path: string): Descriptor {
  if (node === undefined) fail(path, 'missing');
  if (node.type === 'null') fail(path, 'is null; a descriptor is an object');
  const f = readStruct(node, path, DESCRIPTOR, 'a descriptor')!;
  const mediaType = readString(f.get('mediaType'), `${path}.mediaType`);
  if (!mediaType) fail(`${path}.mediaType`, 'missing');
  const digest = readString(f.get('digest'), `${path}.digest`);
  if (!digest) fail(`${path}.digest`, 'missing');
  if (!SHA256.test(digest) && !isDigest(digest)) fail(`${path}.digest`, `${show(digest)} is not a valid digest (sha256:<64 hex> or sha512:<128 hex>)`);
  const size = readInteger(f.get('size'), `${path}.size`);
  if (size === undefined) fail(`${path}.size`, 'missing');
  if (size < 0) fail(`${path}.size`, `${size} is negative`);
  const descriptor: Descriptor = { mediaType, digest: digest as Digest, size };
  const urls = readStringList(f.get('urls'), `${path}.urls`);
  if (urls !== undefined) descriptor.urls = urls;
  const annotations = readStringMap(f.get('annotations'), `${path}.annotations`);
  if (annotations !== undefined) descriptor.annotations = annotations;
  const data = readString(f.get('data'), `${path}.data`);
  if (data !== undefined) {
    // Go decodes []byte with base64.StdEncoding; refuse what it or Node would read leniently.
    if (!BASE64.test(data)) fail(`${path}.data`, 'is not padded standard base64');
    const bytes = Buffer.from(data, 'base64');
    if (bytes.length !== size || digestOf(bytes, digestAlgorithm(digest as Digest)) !== digest)
      fail(`${path}.data`, `does not hold the ${size} bytes of ${digest}`);
    descriptor.data = data;
  }
  const platform = readPlatform(f.get('platform'), `${path}.platform`);
  if (platform !== undefined) descriptor.platform = platform;
  const artifactType = readString(f.get('artifactType'), `${path}.artifactType`);
  if (artifactType !== undefined) descriptor.artifactType = artifactType;
  return descriptor;
}

function readDescriptorList(node: JsonNode | undefined, path: string): Descriptor[] {
  const items = readArray(node, path);
  if (items === undefined) fail(path, node === undefined ? 'missing' : 'is null; it must be a list of descriptors');
  const out = new Array<Descriptor>(items.length);
  for (let i = 0; i < items.length; i++) out[i] = readDescriptor(items[i], `${path}[${i}]`);
  return out;
}

function decode(bytes: Uint8Array | string, options: ImageDocumentOptions): ImageDocument {
  const root = parseJsonTree(bytes);
  if (root.type !== 'object') fail('', `a manifest is a JSON object, not ${jsonTypeName(root) === 'array' ? 'an array' : `a ${jsonTypeName(root)}`}`);
  const f = readStruct(root, '', TOP, 'a manifest')!;
  const declared = declaredType(options.mediaType);
  const body = readString(f.get('mediaType'), 'mediaType') || undefined; // "" is Go's "absent"
  if (declared !== undefined && body !== undefined && declared !== body) {
    fail('mediaType', `${show(body)} does not match the media type it was sent as, ${declared}`);
  }
  let mediaType = declared ?? body;
  const version = readInteger(f.get('schemaVersion'), 'schemaVersion');
  if ((mediaType !== undefined && SCHEMA1_TYPES.includes(mediaType)) || version === 1) {
    fail(version === 1 ? 'schemaVersion' : 'mediaType', 'Docker schema 1 manifests are not supported; use a schema 2 or OCI manifest');
  }
  if (mediaType === undefined) {
    if (options.inferMediaType === false) fail('mediaType', 'missing, and no Content-Type says what the document is; send one or the other');
    mediaType = f.has('manifests') && !f.has('config') ? MediaType.ociIndex : MediaType.ociManifest;
  }
  if (!imageDocumentMediaTypes.includes(mediaType)) fail(body !== undefined ? 'mediaType' : '', `unsupported manifest media type ${show(mediaType)}`);
  if (version !== 2) fail('schemaVersion', version === undefined ? 'missing; it must be 2' : `must be 2, not ${version}`);
  if (DOCKER_TYPES.includes(mediaType) && body === undefined) fail('mediaType', `missing; a Docker manifest must carry mediaType ${mediaType} in its body`);
  for (const key of ['fsLayers', 'history']) {
    if (f.has(key)) fail(key, 'is a Docker schema 1 field; containerd and containers/image refuse a schema 2 or OCI document that has one');
  }
  const subject = f.get('subject') !== undefined && f.get('subject')!.type !== 'null' ? readDescriptor(f.get('subject'), 'subject') : undefined;
  const artifactType = readString(f.get('artifactType'), 'artifactType');
  const annotations = readStringMap(f.get('annotations'), 'annotations');
  const optional = {
    ...(body !== undefined ? { mediaType: body } : {}),
    ...(artifactType !== undefined ? { artifactType } : {}),
    ...(subject !== undefined ? { subject } : {}),
    ...(annotations !== undefined ? { annotations } : {}),
  };
  // The ambiguity checks of distribution (ocischema/manifestlist validateManifest/validateIndex),
  // containerd (images.validateMediaType) and containers/image: a key's presence counts, even as
  // `null` or `[]` (containerd reads it as json.RawMessage and refuses any).
  if (mediaType === MediaType.ociIndex || mediaType === MediaType.dockerManifestList) {
    for (const key of ['config', 'layers']) {
      if (f.has(key)) fail(key, `an index must not have ${key} (Go clients would take it for an image manifest)`);
    }
    const manifests = readDescriptorList(f.get('manifests'), 'manifests');
    return { kind: 'index', mediaType, index: { schemaVersion: 2, ...optional, manifests } };
  }
  if (f.has('manifests')) fail('manifests', 'an image manifest must not have manifests (Go clients would take it for an index)');
  const config = readDescriptor(f.get('config'), 'config');
  const layers = readDescriptorList(f.get('layers'), 'layers');
  return { kind: 'manifest', mediaType, manifest: { schemaVersion: 2, ...optional, config, layers } };
}

/**
 * Parses an image manifest or index (OCI image-spec v1.1 manifest.md / image-index.md, Docker image
 * manifest v2 schema 2 and manifest list) into a tagged union, refusing with {@link ImageDocumentError}
 * anything that a Go client would decode into the spec's structs differently than tsbuild, or refuse:
 * - not JSON, invalid UTF-8, a lone surrogate escape, or not an object;
 * - a key spelled differently from a field it would fill in Go (`MediaType`, `Layers`, `ſize`), or a
 *   field given twice — at the top, in descriptors (config, layers, subject, index entries) and platforms;
 * - an integer field (`schemaVersion`, `size`) that is not an integer literal (`1.5`, `1e3`, `2.0`),
 *   out of int64 (or beyond 2^53), or a negative size; a value of the wrong JSON type;
 * - a body `mediaType` that differs from `options.mediaType`; a Docker document without one; schema 1;
 *   a schemaVersion other than 2; an unsupported media type;
 * - an image manifest with `manifests`, an index with `config` or `layers`, any with `fsLayers`/`history`;
 * - a descriptor without mediaType, with an invalid digest, without size, or with `data` that is not
 *   the described bytes; a null entry in a list, or a null annotation value.
 * `null` elsewhere is read as absent, as Go leaves the zero value. Unknown keys are ignored.
 */
export function parseImageDocument(bytes: Uint8Array | string, options: ImageDocumentOptions = {}): ImageDocument {
  try {
    return decode(bytes, options);
  } catch (e) {
    if (e instanceof JsonFieldError) throw new ImageDocumentError(e.field, e.reason);
    if (e instanceof JsonSyntaxError) throw new ImageDocumentError('', `not valid JSON: ${e.message}`);
    throw e;
  }
}
