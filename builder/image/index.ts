import { loadOnUse } from '../../oci/index.js';
export { ImageState, type ImageLayer, defaultLayerMediaType } from './image-state.js';
export { buildTimestamp, sourceDateEpoch } from './timestamp.js';
export { writeImage, tagImage, type WrittenImage } from './write-image.js';
export type { ExportImage, ArchiveFormat } from './archive-export.js';
export type { LoadedImage } from './archive-import.js';
export { parseOutputSpec, isFilesystemOutput, type OutputSpec, type BuildOutputSpec, type FilesystemOutputSpec, type LayerEncoding } from './output-spec.js';
export { rememberBuiltImage, builtImagesById, type BuiltImage } from './built-images.js';
export { renameLayerType, layerTypeIn, manifestTypeIn, configTypeIn, type MediaFamily } from './media-family.js';

// Archives and layer compression are loaded on first use: a build without outputs, pushes or cache exports
// needs none of them, and their modules (tar-stream and its dependencies) were a tenth of a build's start-up.
export const writeImageArchive = loadOnUse(() => import('./archive-export.js'), 'writeImageArchive');
export const writeOciDirectory = loadOnUse(() => import('./archive-export.js'), 'writeOciDirectory');
export const loadImageArchive = loadOnUse(() => import('./archive-import.js'), 'loadImageArchive');
export const withGzipLayers = loadOnUse(() => import('./compress-layers.js'), 'withGzipLayers');
export const withLayerEncoding = loadOnUse(() => import('./compress-layers.js'), 'withLayerEncoding');
export const encodeLayers = loadOnUse(() => import('./compress-layers.js'), 'encodeLayers');
export const rememberLayerTwin = loadOnUse(() => import('./compress-layers.js'), 'rememberLayerTwin');
