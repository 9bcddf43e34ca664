import { loadOnUse } from '../../oci/index.js';
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
export const importCache = loadOnUse(() => import('./importer.js'), 'importCache');
export const exportCache = loadOnUse(() => import('./exporter.js'), 'exportCache');
export const inlineCacheConfig = loadOnUse(() => import('./exporter.js'), 'inlineCacheConfig');
export const restoreCacheMount = loadOnUse(() => import('./mounts.js'), 'restoreCacheMount');
