import type { Context } from './context.js';
import { isValidTag, type Digest } from '../../oci/index.js';
import { RegistryError, type StoredManifest } from '../repository/index.js';
import { answerEmpty, type MethodTable, type RegistryDeps, type RouteMatch } from './context.js';
import { readSmallBody } from './body.js';
import { digestParam } from './params.js';

function isDigestReference(reference: string): boolean {
  return reference.includes(':');
}

function checkTag(reference: string): void {
  if (!isValidTag(reference)) throw new RegistryError('TAG_INVALID', 'manifest tag did not match the tag grammar', { tag: reference.slice(0, 200) });
}

/**
 * Whether the client accepts a stored media type. Absent Accept means anything; formats are never
 * converted, so a client that accepts none of them gets MANIFEST_UNKNOWN, as distribution answers.
 */
function accepts(accept: string, mediaType: string): boolean {
  if (accept === '' || accept.includes(mediaType)) return true;
  return accept.split(',').some((part) => {
    const type = part.split(';')[0]!.trim();
    return type === '*/*' || type === 'application/*' || type === 'application/json' || type === '';
  });
}

/** Manifests by tag or digest: exact stored bytes under their stored media type; validated pushes. */
export function manifestRoutes(deps: RegistryDeps): MethodTable {
  const unknown = (match: RouteMatch) =>
    new RegistryError('MANIFEST_UNKNOWN', 'manifest unknown', { name: match.name, reference: match.reference.slice(0, 200) });

  async function resolve(match: RouteMatch): Promise<StoredManifest> {
    const repository = deps.registry.repository(match.name, match.namespace);
    let digest: Digest | undefined;
    if (isDigestReference(match.reference)) digest = digestParam(match.reference);
    else {
      checkTag(match.reference);
      digest = await repository.tags.resolve(match.reference);
    }
    const found = digest && (await repository.manifests.get(digest));
    if (!found) throw unknown(match);
    return found;
  }

  async function answer(ctx: Context, match: RouteMatch, withBody: boolean): Promise<void> {
    const m = await resolve(match);
    if (!accepts(ctx.get('Accept'), m.mediaType)) {
      throw new RegistryError('MANIFEST_UNKNOWN', `the manifest is ${m.mediaType}, which the request's Accept header does not list`, {
        mediaType: m.mediaType,
      });
    }
    ctx.set('Docker-Content-Digest', m.digest);
    ctx.set('ETag', `"${m.digest}"`);
    ctx.set('Content-Type', m.mediaType);
    if (ctx.get('If-None-Match') === `"${m.digest}"`) {
      ctx.status = 304;
      return;
    }
    ctx.status = 200;
    if (withBody) ctx.body = m.bytes;
    ctx.length = m.bytes.length;
  }

  return {
    GET: (ctx, match) => answer(ctx, match, true),
    HEAD: (ctx, match) => answer(ctx, match, false),

    async PUT(ctx, match) {
      const byDigest = isDigestReference(match.reference);
      if (!byDigest) checkTag(match.reference);
      const bytes = await readSmallBody(ctx.req, deps.maxManifestBytes);
      ctx.state.bytesIn = bytes.length;
      const { digest, subject } = await deps.registry
        .repository(match.name, match.namespace)
        .manifests.put(bytes, ctx.get('Content-Type') || undefined, byDigest ? { digest: digestParam(match.reference) } : { tag: match.reference });
      if (subject) ctx.set('OCI-Subject', subject);
      ctx.set('Location', `/v2/${match.name}/manifests/${digest}`);
      ctx.set('Docker-Content-Digest', digest);
      answerEmpty(ctx, 201);
    },

    async DELETE(ctx, match) {
      const repository = deps.registry.repository(match.name, match.namespace);
      if (isDigestReference(match.reference)) {
        if (!(await repository.manifests.delete(digestParam(match.reference)))) throw unknown(match);
      } else {
        checkTag(match.reference);
        if (!(await repository.tags.delete(match.reference))) throw unknown(match);
      }
      answerEmpty(ctx, 202);
    },
  };
}
