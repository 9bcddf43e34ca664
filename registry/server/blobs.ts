import type { Context } from './context.js';
import type { Digest } from '../../oci/index.js';
import { RegistryError } from '../repository/index.js';
import { answerEmpty, type MethodTable, type RegistryDeps, type RouteMatch } from './context.js';
import { digestParam } from './params.js';
import { parseRangeHeader } from './range.js';
import { cutWhenStalled, sendFileRange, sendFromStorage } from './send-file.js';

/** Blob GET/HEAD/DELETE. A blob is served in a repository only once it was pushed or mounted there. */
export function blobRoutes(deps: RegistryDeps): MethodTable {
  const blobsOf = (match: RouteMatch) => deps.registry.repository(match.name, match.namespace).blobs;

  function setCommonHeaders(ctx: Context, digest: Digest): void {
    ctx.set('Docker-Content-Digest', digest);
    ctx.set('ETag', `"${digest}"`);
    ctx.set('Accept-Ranges', 'bytes');
    ctx.set('Cache-Control', 'max-age=31536000');
    ctx.type = 'application/octet-stream';
  }

  return {
    async HEAD(ctx, match) {
      const digest = digestParam(match.reference);
      const info = await blobsOf(match).stat(digest);
      if (!info) throw new RegistryError('BLOB_UNKNOWN', 'blob unknown to registry', { digest });
      const { size } = info;
      setCommonHeaders(ctx, digest);
      ctx.status = 200;
      ctx.length = size;
    },

    async GET(ctx, match) {
      cutWhenStalled(ctx, deps.bodyIdleTimeoutMs);
      const blobs = blobsOf(match);
      if (blobs.sender && !ctx.get('Range') && !ctx.get('If-None-Match')) {
        // The whole blob: sent straight from the storage, its size from the storage's answer.
        const digest = digestParam(match.reference);
        const sender = await blobs.sender(digest);
        if (sender) {
          setCommonHeaders(ctx, digest);
          ctx.status = 200;
          return sendFromStorage(ctx, sender);
        }
      }
      const blob = await blobs.get(digestParam(match.reference));
      const { digest, size } = blob;
      setCommonHeaders(ctx, digest);
      if (ctx.get('If-None-Match') === `"${digest}"`) {
        ctx.status = 304;
        return;
      }
      const range = parseRangeHeader(ctx.get('Range') || undefined, size);
      if (range) {
        ctx.status = 206;
        ctx.set('Content-Range', `bytes ${range.start}-${range.end}/${size}`);
      } else {
        ctx.status = 200;
      }
      const length = range ? range.end - range.start + 1 : size;
      if (blob.file !== undefined) return sendFileRange(ctx, blob.file, range?.start ?? 0, length);
      const sender = length > 0 ? await blob.sender?.(range ?? { start: 0, end: size - 1 }) : undefined;
      if (sender) return sendFromStorage(ctx, sender);
      ctx.body = await blob.open(range ? { start: range.start, end: range.end } : undefined);
      ctx.length = length;
    },

    async DELETE(ctx, match) {
      const digest = digestParam(match.reference);
      if (!(await blobsOf(match).delete(digest))) throw new RegistryError('BLOB_UNKNOWN', 'blob unknown to registry', { digest });
      ctx.set('Docker-Content-Digest', digest);
      answerEmpty(ctx, 202);
    },
  };
}
