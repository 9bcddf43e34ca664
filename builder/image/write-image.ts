import { MediaType, parseNormalized, type Digest, type ImageManifest, type Reference } from '../../oci/index.js';
import type { Store } from '../../store/index.js';
import type { ImageState } from './image-state.js';
import { renameLayerType } from './media-family.js';

export interface WrittenImage {
  /** The manifest digest (what `tsbuild images --digests` and a registry show). */
  digest: Digest;
  size: number;
  mediaType: string;
  /** The config digest (docker's image id). */
  configDigest: Digest;
  manifest: ImageManifest;
}

/** Writes the image's config and OCI manifest into the store (layers must already be there). */
/** `annotations` go on the manifest (`--annotation`, BuildKit's `manifest:` annotations). */
export async function writeImage(store: Store, image: ImageState, created: string, annotations?: Record<string, string>): Promise<WrittenImage> {
  image.setCreated(created);
  for (const layer of image.layers) {
    if (!(await store.blobs.has(layer.descriptor.digest))) {
      throw new Error(`layer ${layer.descriptor.digest} of the image is missing from the store at ${store.root}`);
    }
  }
  const configBytes = Buffer.from(JSON.stringify(image.config));
  const config = await store.blobs.put(configBytes);
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: config.digest, size: config.size },
    // a base pulled with docker media types keeps its layer bytes, under the OCI name of their type
    layers: image.layers.map((l) => ({ mediaType: renameLayerType(l.descriptor.mediaType, 'oci'), digest: l.descriptor.digest, size: l.descriptor.size })),
    ...(annotations && Object.keys(annotations).length ? { annotations } : {}),
  };
  const written = await store.blobs.put(JSON.stringify(manifest));
  return { digest: written.digest, size: written.size, mediaType: MediaType.ociManifest, configDigest: config.digest, manifest };
}

/** Names the image in the local store under every given reference (`app:v1` → docker.io/library/app:v1). */
export async function tagImage(store: Store, image: WrittenImage, tags: string[]): Promise<Reference[]> {
  const refs = tags.map((t) => {
    const ref = parseNormalized(t);
    if (ref.digest) throw new Error(`cannot tag an image as "${t}": a tag must not contain a digest`);
    return ref;
  });
  for (const ref of refs) await store.images.set(ref, image.digest, image.mediaType);
  return refs;
}
