import type { ChainID, Digest } from '../../oci/index.js';
import type { CacheRecord } from './build-cache.js';
import type { ImageState } from '../image/index.js';
import type { StageScope } from '../frontend/index.js';

/** A finished stage: its image and the snapshot chain holding its rootfs. */
export interface StageResult {
  image: ImageState;
  top: ChainID | undefined;
  /** The cache state key after the last step (children's keys build on it). */
  key: string;
  /** The time of its latest step (the image's `created`). */
  created: string;
  /** ENV and ARGs at the end of the stage (a child stage starts with them). */
  scope: StageScope;
  /** The cache records of the steps that made it (its own and its parent stages'). */
  records: Map<Digest, CacheRecord>;
}
