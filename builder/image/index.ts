export { ImageState, type ImageLayer, defaultLayerMediaType } from './image-state.js';
export { buildTimestamp, sourceDateEpoch } from './timestamp.js';
export { writeImage, tagImage, type WrittenImage } from './write-image.js';
export { writeImageArchive, writeOciDirectory, type ExportImage, type ArchiveFormat } from './archive-export.js';
export { loadImageArchive, type LoadedImage } from './archive-import.js';
export { parseOutputSpec, type OutputSpec, type LayerEncoding } from './output-spec.js';
export { withGzipLayers, withLayerEncoding, encodeLayers, rememberLayerTwin } from './compress-layers.js';
export { rememberBuiltImage, builtImagesById, type BuiltImage } from './built-images.js';
export { renameLayerType, layerTypeIn, manifestTypeIn, configTypeIn, type MediaFamily } from './media-family.js';
