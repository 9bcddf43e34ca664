import type { Digest } from '../../oci/index.js';

/** What a blob transfer is doing. */
export type BlobPhase = 'waiting' | 'downloading' | 'uploading' | 'exists' | 'mounted' | 'retrying' | 'done';

export type ProgressEvent =
  | { type: 'resolved'; reference: string; digest: Digest; endpoint: string }
  | { type: 'blob'; digest: Digest; mediaType: string; phase: BlobPhase; current: number; total: number; note?: string }
  | { type: 'manifest'; reference: string; digest: Digest }
  | { type: 'notice'; message: string };

export type ProgressListener = (event: ProgressEvent) => void;
