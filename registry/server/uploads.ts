import type { Context } from './context.js';
import type { Digest } from '../../oci/index.js';
import { RegistryError, type UploadSession } from '../repository/index.js';
import { answerEmpty, type MethodTable, type RegistryDeps, type RouteMatch } from './context.js';
import { digestParam, queryValue } from './params.js';
import { parseContentRange, uploadedRange, type ByteSpan } from './range.js';

function uploadLocation(name: string, id: string): string {
  return `/v2/${name}/blobs/uploads/${id}`;
}

function blobLocation(name: string, digest: Digest): string {
  return `/v2/${name}/blobs/${digest}`;
}

/** Whether the request carries a body at all (docker's closing PUT and the spec's POST have none). */
function hasBody(ctx: Context): boolean {
  const length = ctx.get('Content-Length');
  if (length !== '') return length !== '0';
  return ctx.get('Transfer-Encoding') !== '';
}

/**
 * Blob uploads: POST starts a session (or mounts, or takes the whole blob with `?digest=`), PATCH appends
 * chunks (in order, `Content-Range`) or a stream (docker), PUT `?digest=` verifies and commits, GET reports
 * progress, DELETE cancels. Sessions are store ingests labelled with their repository: they survive client
 * disconnects and restarts, and nothing becomes a visible blob before its digest was verified.
 */
export function uploadRoutes(deps: RegistryDeps): { start: MethodTable; session: MethodTable } {
  const blobsOf = (match: RouteMatch) => deps.registry.repository(match.name, match.namespace).blobs;

  function openSession(match: RouteMatch): Promise<UploadSession> {
    return blobsOf(match).resumeUpload(match.reference);
  }

  function answerProgress(ctx: Context, name: string, id: string, size: number, status: number): void {
    ctx.set('Location', uploadLocation(name, id));
    ctx.set('Range', uploadedRange(size));
    ctx.set('Docker-Upload-UUID', id);
    answerEmpty(ctx, status);
  }

  function answerCommitted(ctx: Context, name: string, digest: Digest): void {
    ctx.set('Location', blobLocation(name, digest));
    ctx.set('Docker-Content-Digest', digest);
    answerEmpty(ctx, 201);
  }

  /**
   * Appends the request body; `range` pins where it must start. Returns the session's new size. A newer
   * request on the session (PATCH, PUT, DELETE) takes over from this one at once, so a client that went
   * silent never holds its session; a body silent for the idle time is cut. Either way what was stored
   * stays, and the status GET reports it.
   */
  async function receive(ctx: Context, ingest: UploadSession, range: ByteSpan | undefined): Promise<number> {
    if (range) {
      const length = ctx.get('Content-Length');
      if (length !== '' && Number(length) !== range.end - range.start + 1) {
        throw new RegistryError('BLOB_UPLOAD_INVALID', `Content-Range ${range.start}-${range.end} does not match Content-Length ${length}`);
      }
    }
    const before = range ? range.start : await ingest.size();
    // The body is left open on failure: the error is answered on this connection (errors.ts).
    const size = await ingest.append(ctx.req, { offset: range?.start, handOver: true, leaveSourceOpen: true, idleTimeoutMs: deps.bodyIdleTimeoutMs });
    ctx.state.bytesIn = size - before;
    return size;
  }

  async function commit(ctx: Context, name: string, ingest: UploadSession, digest: Digest): Promise<void> {
    await ingest.commit(digest);
    answerCommitted(ctx, name, digest);
  }

  const start: MethodTable = {
    async POST(ctx, match) {
      const mount = queryValue(ctx.query, 'mount');
      const from = queryValue(ctx.query, 'from');
      if (mount !== undefined) {
        const digest = digestParam(mount, 'mount');
        // Mount only from a repository where the blob is visible; otherwise fall back to a plain upload (202).
        if (from && (await blobsOf(match).mount(digest, from))) {
          answerCommitted(ctx, match.name, digest);
          return;
        }
      }
      const monolithic = queryValue(ctx.query, 'digest');
      const expected = monolithic !== undefined ? digestParam(monolithic) : undefined;
      const ingest = await blobsOf(match).createUpload();
      if (expected) {
        try {
          if (hasBody(ctx)) await receive(ctx, ingest, undefined);
          await commit(ctx, match.name, ingest, expected);
        } catch (e) {
          await ingest.cancel().catch(() => undefined);
          throw e;
        }
        return;
      }
      answerProgress(ctx, match.name, ingest.id, 0, 202);
    },
  };

  const session: MethodTable = {
    async GET(ctx, match) {
      const ingest = await openSession(match);
      answerProgress(ctx, match.name, ingest.id, await ingest.size(), 204);
    },

    async PATCH(ctx, match) {
      const range = parseContentRange(ctx.get('Content-Range') || undefined);
      const ingest = await openSession(match);
      const size = await receive(ctx, ingest, range);
      answerProgress(ctx, match.name, ingest.id, size, 202);
    },

    async PUT(ctx, match) {
      const digest = digestParam(queryValue(ctx.query, 'digest'));
      const range = parseContentRange(ctx.get('Content-Range') || undefined);
      const ingest = await openSession(match);
      if (hasBody(ctx)) await receive(ctx, ingest, range);
      await commit(ctx, match.name, ingest, digest);
    },

    async DELETE(ctx, match) {
      const ingest = await openSession(match);
      await ingest.cancel();
      answerEmpty(ctx, 204);
    },
  };

  return { start, session };
}
