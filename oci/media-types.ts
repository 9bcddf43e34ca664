/** Media types of the OCI image spec and Docker's image manifest v2 schema 2. */
export const MediaType = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociLayerNondistributable: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  ociLayerNondistributableGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerLayerForeignGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
} as const;
export type MediaTypeName = (typeof MediaType)[keyof typeof MediaType];

export const manifestMediaTypes: readonly string[] = [MediaType.ociManifest, MediaType.dockerManifest];
export const indexMediaTypes: readonly string[] = [MediaType.ociIndex, MediaType.dockerManifestList];
export const configMediaTypes: readonly string[] = [MediaType.ociConfig, MediaType.dockerConfig];

export type LayerCompression = 'none' | 'gzip' | 'zstd';

export function isManifestMediaType(mt: string): boolean {
  return manifestMediaTypes.includes(mt);
}
export function isIndexMediaType(mt: string): boolean {
  return indexMediaTypes.includes(mt);
}

/** The compression a layer media type declares, or undefined for a type that is not a layer. */
export function layerCompression(mt: string): LayerCompression | undefined {
  if (mt === MediaType.ociLayer || mt === MediaType.ociLayerNondistributable || mt === 'application/vnd.docker.image.rootfs.diff.tar') return 'none';
  if (mt.endsWith('+gzip') || mt === MediaType.dockerLayerGzip || mt === MediaType.dockerLayerForeignGzip) return 'gzip';
  if (mt.endsWith('+zstd')) return 'zstd';
  return undefined;
}

/** The layer media type for a compression in the OCI or Docker family. */
export function layerMediaType(compression: LayerCompression, family: 'oci' | 'docker' = 'oci'): string {
  if (family === 'docker') {
    if (compression === 'gzip') return MediaType.dockerLayerGzip;
    if (compression === 'none') return 'application/vnd.docker.image.rootfs.diff.tar';
    return MediaType.ociLayerZstd;
  }
  return compression === 'none' ? MediaType.ociLayer : compression === 'gzip' ? MediaType.ociLayerGzip : MediaType.ociLayerZstd;
}
