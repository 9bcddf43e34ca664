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
type ArchiveExport = typeof import('./archive-export.js');
type ArchiveImport = typeof import('./archive-import.js');
type CompressLayers = typeof import('./compress-layers.js');

export const writeImageArchive: ArchiveExport['writeImageArchive'] = async (...args) => (await import('./archive-export.js')).writeImageArchive(...args);
export const writeOciDirectory: ArchiveExport['writeOciDirectory'] = async (...args) => (await import('./archive-export.js')).writeOciDirectory(...args);
export const loadImageArchive: ArchiveImport['loadImageArchive'] = async (...args) => (await import('./archive-import.js')).loadImageArchive(...args);
export const withGzipLayers: CompressLayers['withGzipLayers'] = async (...args) => (await import('./compress-layers.js')).withGzipLayers(...args);
export const withLayerEncoding: CompressLayers['withLayerEncoding'] = async (...args) => (await import('./compress-layers.js')).withLayerEncoding(...args);
export const encodeLayers: CompressLayers['encodeLayers'] = async (...args) => (await import('./compress-layers.js')).encodeLayers(...args);
export const rememberLayerTwin: CompressLayers['rememberLayerTwin'] = async (...args) => (await import('./compress-layers.js')).rememberLayerTwin(...args);
