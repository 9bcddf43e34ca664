import {
  familiarReference,
  MediaType,
  digestHex,
  parseNormalized,
  type Descriptor,
  type Digest,
  type ImageIndex,
  type ImageManifest,
} from '../../oci/index.js';
import { exportOciLayout, IMAGE_NAME, makeDirs, REF_NAME, resolveImage, type Store } from '../../store/index.js';
import { TarFileWriter } from './tar-writer.js';

/** An image to export: the manifest in the store and the names it should carry. */
export interface ExportImage {
  digest: Digest;
  mediaType: string;
  size: number;
  /** References as given (`app:v1`); may be empty. */
  names: string[];
}

export type ArchiveFormat = 'oci' | 'docker';

function blobName(d: Digest): string {
  return `blobs/sha256/${digestHex(d)}`;
}

/**
 * Writes images as one tar holding an OCI image layout (`oci-layout`, `index.json`, `blobs/`) and, for
 * the docker format, docker-archive's `manifest.json` and `repositories` pointing into the same blobs —
 * the shape `docker save` has made since docker 25, which `docker load` of every version accepts.
 */
export async function writeImageArchive(store: Store, images: ExportImage[], dest: string, format: ArchiveFormat): Promise<void> {
  const out = new TarFileWriter(dest);
  try {
    await out.file('oci-layout', JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    const written = new Set<string>();
    const index: ImageIndex = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] };
    const dockerManifest: { Config: string; RepoTags: string[]; Layers: string[] }[] = [];
    const repositories: Record<string, Record<string, string>> = {};
    const writeBlob = async (desc: { digest: Digest; size: number }) => {
      if (written.has(desc.digest)) return;
      written.add(desc.digest);
      await out.stream(blobName(desc.digest), desc.size, await store.blobs.read(desc.digest));
    };
    for (const image of images) {
      const resolved = await resolveImage(store.blobs, image.digest);
      const manifestBytes = await store.blobs.readBuffer(resolved.manifestDigest);
      const manifest: ImageManifest = resolved.manifest;
      await writeBlob(manifest.config);
      for (const layer of manifest.layers) await writeBlob(layer);
      await writeBlob({ digest: resolved.manifestDigest, size: manifestBytes.length });
      const familiar = image.names.map((n) => familiarReference(parseNormalized(n)));
      const entry = (annotations?: Record<string, string>): Descriptor => ({
        mediaType: resolved.manifestMediaType,
        digest: resolved.manifestDigest,
        size: manifestBytes.length,
        ...(annotations ? { annotations } : {}),
      });
      if (image.names.length === 0) index.manifests.push(entry());
      for (const name of image.names) {
        const ref = parseNormalized(name);
        index.manifests.push(entry({ [IMAGE_NAME]: `${ref.registry}/${ref.repository}:${ref.tag ?? 'latest'}`, [REF_NAME]: ref.tag ?? 'latest' }));
      }
      if (format === 'docker') {
        dockerManifest.push({ Config: blobName(manifest.config.digest), RepoTags: familiar, Layers: manifest.layers.map((l) => blobName(l.digest)) });
        const top = manifest.layers.at(-1);
        for (const name of familiar) {
          const colon = name.lastIndexOf(':');
          if (top) (repositories[name.slice(0, colon)] ??= {})[name.slice(colon + 1)] = digestHex(top.digest);
        }
      }
    }
    await out.file('index.json', JSON.stringify(index));
    if (format === 'docker') {
      await out.file('manifest.json', JSON.stringify(dockerManifest));
      await out.file('repositories', JSON.stringify(repositories));
    }
    await out.finish();
  } catch (e) {
    await out.abort();
    throw e;
  }
}

/** Writes images into an OCI layout directory (created or extended). */
export async function writeOciDirectory(store: Store, images: ExportImage[], dir: string): Promise<void> {
  await makeDirs(dir);
  const layoutImages = images.flatMap((image) => {
    if (image.names.length === 0) return [{ digest: image.digest, mediaType: image.mediaType, size: image.size }];
    return image.names.map((n) => {
      const ref = parseNormalized(n);
      return {
        digest: image.digest,
        mediaType: image.mediaType,
        size: image.size,
        name: `${ref.registry}/${ref.repository}:${ref.tag ?? 'latest'}`,
        tag: ref.tag ?? 'latest',
      };
    });
  });
  await exportOciLayout(store.blobs, dir, layoutImages, store.driver.localPath ? (d) => store.blobFile(d)! : undefined);
}
