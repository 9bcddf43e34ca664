import type { Context } from 'koa';
import { digestAlgorithm, digestOf, isValidTag, type Descriptor, type Digest } from '../../oci/index.js';
import { BlobNotFoundError } from '../../store/index.js';
import { answerEmpty, type MethodTable, type RegistryDeps, type RouteMatch } from './context.js';
import { RegistryError } from './errors.js';
import { readSmallBody } from './body.js';
import type { CachedManifest } from './manifest-cache.js';
import { checkReferences, parseManifest } from './manifest-validation.js';
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
  const { store, cache } = deps;
  const unknown = (match: RouteMatch) => new RegistryError('MANIFEST_UNKNOWN', 'manifest unknown', { name: match.name, reference: match.reference.slice(0, 200) });

  async function resolve(match: RouteMatch): Promise<CachedManifest> {
    let digest: Digest;
    if (isDigestReference(match.reference)) {
      digest = digestParam(match.reference);
    } else {
      checkTag(match.reference);
      const cached = cache.tag(match.name, match.reference);
      if (cached) digest = cached;
      else {
        const found = await store.repositories.resolveTag(match.name, match.reference);
        if (!found) throw unknown(match);
        cache.setTag(match.name, match.reference, found);
        digest = found;
      }
    }
    const hit = cache.manifest(match.name, digest);
    if (hit) return hit;
    const link = await store.repositories.getManifestLink(match.name, digest);
    if (!link) throw unknown(match);
    let bytes: Buffer;
    try {
      bytes = await store.blobs.readBuffer(digest);
    } catch (e) {
      if (e instanceof BlobNotFoundError) throw unknown(match);
      throw e;
    }
    const entry: CachedManifest = { digest, mediaType: link.mediaType, bytes };
    cache.setManifest(match.name, entry);
    return entry;
  }

  async function answer(ctx: Context, match: RouteMatch, withBody: boolean): Promise<void> {
    const m = await resolve(match);
    if (!accepts(ctx.get('Accept'), m.mediaType)) {
      throw new RegistryError('MANIFEST_UNKNOWN', `the manifest is ${m.mediaType}, which the request's Accept header does not list`, { mediaType: m.mediaType });
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
      const referenced = byDigest ? digestParam(match.reference) : undefined;
      if (!byDigest) checkTag(match.reference);
      const bytes = await readSmallBody(ctx.req, deps.maxManifestBytes);
      ctx.state.bytesIn = bytes.length;
      const parsed = parseManifest(bytes, ctx.get('Content-Type') || undefined);
      const digest = digestOf(bytes, referenced ? digestAlgorithm(referenced) : 'sha256');
      if (referenced && digest !== referenced) {
        throw new RegistryError('DIGEST_INVALID', `the manifest's digest is ${digest}, not ${referenced} as the URL says`, { expected: referenced, actual: digest });
      }
      await checkReferences(store, match.name, parsed);
      await store.blobs.put(bytes, { digest });
      await store.repositories.linkManifest(match.name, { digest, mediaType: parsed.mediaType, size: bytes.length });
      if (parsed.subject) {
        const descriptor: Descriptor = {
          mediaType: parsed.mediaType,
          digest,
          size: bytes.length,
          ...(parsed.artifactType ? { artifactType: parsed.artifactType } : {}),
          ...(parsed.annotations ? { annotations: parsed.annotations } : {}),
        };
        await store.repositories.addReferrer(match.name, parsed.subject.digest, descriptor);
        ctx.set('OCI-Subject', parsed.subject.digest);
      }
      if (!byDigest) {
        await store.repositories.setTag(match.name, match.reference, digest);
        cache.setTag(match.name, match.reference, digest);
      }
      cache.setManifest(match.name, { digest, mediaType: parsed.mediaType, bytes });
      ctx.set('Location', `/v2/${match.name}/manifests/${digest}`);
      ctx.set('Docker-Content-Digest', digest);
      answerEmpty(ctx, 201);
    },

    async DELETE(ctx, match) {
      if (!isDigestReference(match.reference)) {
        checkTag(match.reference);
        const had = await store.repositories.deleteTag(match.name, match.reference);
        cache.dropTag(match.name, match.reference);
        if (!had) throw unknown(match);
        answerEmpty(ctx, 202);
        return;
      }
      const digest = digestParam(match.reference);
      const link = await store.repositories.getManifestLink(match.name, digest);
      if (!link) throw unknown(match);
      try {
        const doc = await store.blobs.readJson<{ subject?: Descriptor }>(digest);
        if (doc.subject?.digest) await store.repositories.removeReferrer(match.name, doc.subject.digest, digest);
      } catch {
        // unreadable content: nothing to unindex
      }
      await store.repositories.unlinkManifest(match.name, digest);
      cache.dropManifest(match.name, digest);
      answerEmpty(ctx, 202);
    },
  };
}
