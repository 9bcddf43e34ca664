import { layerCompression, MediaType, type LayerCompression } from '../../oci/index.js';

/**
 * The two families of image media types. A manifest holds one family only: an OCI manifest OCI layer and
 * config types, a docker (schema 2) manifest docker ones — BuildKit's exporters rename a base layer's
 * type to the output's family (`oci-mediatypes`), and so does tsbuild.
 */
export type MediaFamily = 'oci' | 'docker';

const DOCKER_LAYER = 'application/vnd.docker.image.rootfs.diff.tar';

const nondistributable = new Set<string>([
  MediaType.ociLayerNondistributable,
  MediaType.ociLayerNondistributableGzip,
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  MediaType.dockerLayerForeignGzip,
]);

/** A layer media type in `family` for a layer of `compression` (foreign layers stay foreign). */
export function layerTypeIn(family: MediaFamily, compression: LayerCompression, foreign = false): string {
  if (family === 'docker') {
    if (compression === 'zstd') throw new Error('docker media types have no zstd layer: use compression=zstd with oci-mediatypes=true');
    if (foreign) return MediaType.dockerLayerForeignGzip;
    return compression === 'gzip' ? MediaType.dockerLayerGzip : DOCKER_LAYER;
  }
  if (foreign) {
    return compression === 'none'
      ? MediaType.ociLayerNondistributable
      : compression === 'gzip'
        ? MediaType.ociLayerNondistributableGzip
        : 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd';
  }
  return compression === 'none' ? MediaType.ociLayer : compression === 'gzip' ? MediaType.ociLayerGzip : MediaType.ociLayerZstd;
}

/** `mediaType` (a layer type of either family) renamed into `family`. */
export function renameLayerType(mediaType: string, family: MediaFamily): string {
  const compression = layerCompression(mediaType);
  if (compression === undefined) return mediaType; // not a layer type we know: left as the image has it
  return layerTypeIn(family, compression, nondistributable.has(mediaType));
}

export function manifestTypeIn(family: MediaFamily): string {
  return family === 'docker' ? MediaType.dockerManifest : MediaType.ociManifest;
}

export function configTypeIn(family: MediaFamily): string {
  return family === 'docker' ? MediaType.dockerConfig : MediaType.ociConfig;
}
