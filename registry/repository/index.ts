export type {
  Registry,
  Repository,
  BlobService,
  BlobContent,
  BlobRange,
  UploadSession,
  UploadAppendOptions,
  ManifestService,
  ManifestPutResult,
  StoredManifest,
  TagService,
  ReferrerService,
  Page,
  Listing,
} from './types.js';
export { RegistryError, ErrorCodes, toRegistryError, isStoreError, type ErrorCode } from './errors.js';
export { LocalRegistry } from './local.js';
export { REPOSITORY_LABEL } from './local-blobs.js';
export { CachedRegistry } from './cached.js';
export { parseManifest, checkReferences, ACCEPTED_MANIFEST_TYPES, type ParsedManifest, type ReferenceLookup } from './manifest-validation.js';
export { ManifestCache, type CachedManifest } from './manifest-cache.js';
export { openScaleout, SharedCacheRegistry, type Scaleout, type ScaleoutOptions } from './scaleout.js';
