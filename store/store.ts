import { join } from 'node:path';
import type { Digest } from '../oci/index.js';
import { BlobStore } from './blobs.js';
import { RenameClaims, type BlobClaims } from './gc-claims.js';
import { FilesystemDriver } from './driver/filesystem-driver.js';
import type { StorageDriver } from './driver/storage-driver.js';
import { ImageIndex } from './image-index.js';
import { IngestStore } from './ingests.js';
import { blobPath } from './layout.js';
import { RepositoryStore } from './repositories.js';
import { spreadChildren } from './spread-dirs.js';
import { makeDirs } from './make-dirs.js';
import { sweepTempFiles } from './sweep.js';

export interface StoreOptions {
  /** Storage underneath; the filesystem under `root` by default. */
  driver?: StorageDriver;
  /** Skip the start-up sweep of crash leftovers. */
  noSweep?: boolean;
  /** Upload sessions other than the driver's files (SharedIngestStore: state in Redis for replicas on S3). */
  ingests?: (driver: StorageDriver) => IngestStore;
  /** How garbage collection claims blobs (gc-claims.ts): by rename by default; SharedClaims (Redis) for replicas on S3. */
  claims?: (driver: StorageDriver) => BlobClaims;
}

/** The one content-addressed store shared by the builder and the registry. */
export class Store {
  readonly blobs: BlobStore;
  readonly ingests: IngestStore;
  readonly repositories: RepositoryStore;
  readonly images: ImageIndex;
  readonly claims: BlobClaims;

  private constructor(
    readonly root: string,
    readonly driver: StorageDriver,
    ingests?: IngestStore,
    claims?: BlobClaims,
  ) {
    this.ingests = ingests ?? new IngestStore(driver);
    this.claims = claims ?? new RenameClaims(driver);
    this.blobs = new BlobStore(driver, this.ingests, this.claims);
    this.repositories = new RepositoryStore(driver);
    this.images = new ImageIndex(driver);
  }

  static async open(root: string, options: StoreOptions = {}): Promise<Store> {
    await makeDirs(root);
    // a root where no directory can be made (procfs) fails here in one line, not in a mkdir that spins
    await makeDirs(join(root, 'tmp'));
    const driver = options.driver ?? new FilesystemDriver(join(root, 'content'));
    const store = new Store(root, driver, options.ingests?.(driver), options.claims?.(driver));
    if (!options.noSweep) await sweepTempFiles(root);
    return store;
  }

  /** A local directory for state that must be on a real filesystem (snapshots, build cache, temp dirs). */
  async localDir(name: 'snapshots' | 'cache' | 'tmp' | string): Promise<string> {
    const dir = join(this.root, name);
    await makeDirs(dir);
    // their children are trees builds fill with many files: each gets a block group of its own (spread-dirs.ts);
    // tmp/ holds small scratch dirs and stays as empty as its owners leave it (no marker)
    if (name === 'snapshots' || name === 'cache') await spreadChildren(dir);
    return dir;
  }

  /** The blob's file on disk, when the driver is a local filesystem. */
  blobFile(digest: Digest): string | undefined {
    return this.driver.localPath?.(blobPath(digest));
  }
}
