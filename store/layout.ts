import { digestAlgorithm, digestHex, type Digest } from '../oci/index.js';

/** Where things live inside the driver's tree (one place, so the layout can change in one place). */
export function blobPath(digest: Digest): string {
  return `blobs/${digestAlgorithm(digest)}/${digestHex(digest)}`;
}

export function repositoryPath(name: string): string {
  return `repositories/${name}`;
}
