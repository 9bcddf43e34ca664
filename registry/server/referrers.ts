import { MediaType, type ImageIndex } from '../../oci/index.js';
import type { MethodTable, RegistryDeps } from './context.js';
import { digestParam, queryValue } from './params.js';

/**
 * The referrers API (distribution spec v1.1): an OCI index of the manifests whose `subject` is the
 * digest, filtered by `artifactType` when asked (then `OCI-Filters-Applied: artifactType`). An unknown
 * digest or repository gives an empty index, never a 404.
 */
export function referrerRoutes(deps: RegistryDeps): MethodTable {
  return {
    async GET(ctx, match) {
      const subject = digestParam(match.reference);
      const artifactType = queryValue(ctx.query, 'artifactType');
      let manifests = await deps.registry.repository(match.name, match.namespace).referrers.list(subject);
      if (artifactType !== undefined && artifactType !== '') {
        manifests = manifests.filter((d) => d.artifactType === artifactType);
        ctx.set('OCI-Filters-Applied', 'artifactType');
      }
      manifests.sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0));
      const index: ImageIndex = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests };
      ctx.set('Content-Type', MediaType.ociIndex);
      ctx.body = Buffer.from(JSON.stringify(index));
    },
  };
}
