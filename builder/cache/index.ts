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
export type { ImportedCache } from './importer.js';
export type { CacheContents } from './exporter.js';

// Cache import, export and cache mount restores are loaded on first use: most builds use none of them.
type Importer = typeof import('./importer.js');
type Exporter = typeof import('./exporter.js');
type Mounts = typeof import('./mounts.js');

export const importCache: Importer['importCache'] = async (...args) => (await import('./importer.js')).importCache(...args);
export const exportCache: Exporter['exportCache'] = async (...args) => (await import('./exporter.js')).exportCache(...args);
export const inlineCacheConfig: Exporter['inlineCacheConfig'] = async (...args) => (await import('./exporter.js')).inlineCacheConfig(...args);
export const restoreCacheMount: Mounts['restoreCacheMount'] = async (...args) => (await import('./mounts.js')).restoreCacheMount(...args);
