export {
  CACHE_CONFIG_MEDIA_TYPE,
  INLINE_CACHE_KEY,
  UNCOMPRESSED_ANNOTATION,
  validateCacheConfig,
  type CacheConfig,
  type CacheRecord,
  type CacheLayer,
  type CacheConfigRecord,
} from './format.js';
export { parseCacheTo, parseCacheFrom, type CacheExportSpec, type CacheImportSpec, type CacheMode } from './spec.js';
export { importCache, ImportedCache } from './importer.js';
export { exportCache, inlineCacheConfig, type CacheContents } from './exporter.js';
export { restoreCacheMount } from './mounts.js';
