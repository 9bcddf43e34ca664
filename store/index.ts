export { Store, type StoreOptions } from './store.js';
export { BlobStore, type BlobInfo, type WriteExpectation } from './blobs.js';
export { IngestStore, Ingest, type IngestCreateOptions } from './ingests.js';
export { RepositoryStore, paginate, lexicalCompare, type ManifestLink, type Page } from './repositories.js';
export { ImageIndex, type ImageRecord, processAlive } from './image-index.js';
export { resolveImage, selectPlatform, platformMatches, referencedBlobs, type ResolvedImage } from './image-reader.js';
export { exportOciLayout, importOciLayout, readLayoutIndex, REF_NAME, IMAGE_NAME, type LayoutImage } from './oci-layout.js';
export { sweepTempFiles } from './sweep.js';
export { warmHashThread } from './off-thread-digester.js';
export { makeDirs } from './make-dirs.js';
export { errnoReason } from './errno.js';
export { FilesystemDriver, tempName } from './driver/filesystem-driver.js';
export type { StorageDriver, FileInfo, FileSender, ByteRange, PutOptions } from './driver/storage-driver.js';
export * from './errors.js';
export { SnapshotStore, chainIdOf, chainIdsOf, SNAPSHOT_TEMP_PREFIX, type Snapshot } from './snapshots.js';
export {
  repositoryNames,
  repositoryHoldings,
  localImageDigests,
  heldDigests,
  blobFileInfo,
  markReachable,
  documentRefs,
  pinnedRoots,
  localImageRoots,
  buildCacheLayers,
  type MarkOptions,
  type MarkResult,
  type DocumentRefs,
} from './reachability.js';
export {
  collectGarbage,
  sweepBlobs,
  deleteUnheld,
  gcCutoff,
  type GcOptions,
  type GcReport,
  type SweepResult,
  type SweepResult as DeleteUnheldResult,
} from './gc.js';
export { GcLockedError, RenameClaims, type BlobClaims, type GcLock } from './gc-claims.js';
export { SharedClaims } from './shared-gc-claims.js';
export { acquireLease, holdLeaseUntilExit, liveLeases, type LeaseInfo } from './leases.js';
export { pruneLocal, removeImageContent, type PruneOptions, type PruneReport, type RemovedContent } from './prune.js';
export { diskUsage, type DiskUsage, type UsageCategory } from './disk-usage.js';
export { S3Driver, MIN_PART_BYTES, type S3DriverOptions } from './driver/s3-driver.js';
export type { FileWriter, WriterOptions } from './driver/storage-driver.js';
export { SharedIngest, SharedIngestStore } from './shared-ingests.js';
