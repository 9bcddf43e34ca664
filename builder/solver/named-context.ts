import { promises as fs } from 'node:fs';
import { defaultPlatform, formatReference, MediaType, parseNormalized, type ImageConfig, type ImageManifest, type Platform } from '../../oci/index.js';
import type { Store } from '../../store/index.js';
import { commitUpperDir } from '../snapshot/index.js';
import type { PlanStage } from './plan.js';
import type { NamedContext, SolveContext } from './solve-context.js';

/**
 * `--build-context NAME=VALUE` as BuildKit parses it: `docker-image://REF` replaces the image NAME,
 * anything else not a URL is a local directory. URLs (`https://`, git) and `oci-layout://` are refused.
 */
export async function parseNamedContext(spec: string): Promise<[string, NamedContext]> {
  const eq = spec.indexOf('=');
  if (eq <= 0 || eq === spec.length - 1) throw new Error(`--build-context "${spec}": expected NAME=DIR or NAME=docker-image://REF`);
  const name = spec.slice(0, eq);
  const value = spec.slice(eq + 1);
  try {
    parseNormalized(name);
  } catch {
    throw new Error(`--build-context "${spec}": ${name} is not a valid image name (a named context is used as FROM ${name} or COPY --from=${name})`);
  }
  if (value.startsWith('docker-image://')) {
    const ref = value.slice('docker-image://'.length);
    try {
      parseNormalized(ref);
    } catch (e) {
      throw new Error(`--build-context ${name}: ${ref} is not an image reference: ${(e as Error).message}`);
    }
    return [name, { type: 'image', ref }];
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value) || /^git@/.test(value)) {
    throw new Error(
      `--build-context ${name}=${value}: ${value.split('://')[0]} contexts are not supported by tsbuild; use a local directory or docker-image://REF`,
    );
  }
  const st = await fs.stat(value).catch(() => undefined);
  if (!st?.isDirectory()) throw new Error(`--build-context ${name}=${value}: no such directory`);
  return [name, { type: 'dir', dir: value }];
}

/** The named context an image reference as written in the Dockerfile stands for: exact name first, then the normalized one. */
export function lookupNamedContext(contexts: Map<string, NamedContext> | undefined, input: string): NamedContext | undefined {
  if (!contexts?.size) return undefined;
  const exact = contexts.get(input);
  if (exact) return exact;
  let wanted: string;
  try {
    wanted = formatReference(parseNormalized(input));
  } catch {
    return undefined;
  }
  for (const [name, c] of contexts) {
    if (formatReference(parseNormalized(name)) === wanted) return c;
  }
  return undefined;
}

/**
 * A local directory as an image of one layer (BuildKit's FROM a local named context: the stage's
 * filesystem is the directory, files keep their owners and modes, the config is scratch's). Stored by
 * digest; returns the reference to resolve it by.
 */
export async function directoryImage(
  store: Store,
  name: string,
  dir: string,
  platform: Platform = defaultPlatform(),
  sourceDateEpoch?: number,
): Promise<string> {
  const layer = await commitUpperDir(store, { upper: dir, lowers: [], compression: 'none', ...(sourceDateEpoch !== undefined ? { sourceDateEpoch } : {}) });
  const config: ImageConfig = {
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: {},
    rootfs: { type: 'layers', diff_ids: [layer.diffId] },
    history: [{ created_by: `context ${name}`, comment: 'tsbuild named context' }],
  } as ImageConfig;
  const configBlob = await store.blobs.put(Buffer.from(JSON.stringify(config)));
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: configBlob.digest, size: configBlob.size },
    layers: [layer.descriptor],
  };
  const written = await store.blobs.put(JSON.stringify(manifest));
  const ref = parseNormalized(name);
  return `${ref.registry}/${ref.repository}@${written.digest}`;
}

/**
 * The FROM line of a stage as BuildKit prints it: an image base with its expanded, normalized name and
 * the digest it resolved to (`FROM docker.io/library/busybox:latest@sha256:…`); other bases as written.
 * Resolving here starts the lookup the stage then shares; a failure is left for the stage to report.
 */
export async function fromLine(ctx: SolveContext, stage: PlanStage, written: string): Promise<string> {
  if (stage.base.type !== 'image') return written;
  let name = stage.base.ref;
  try {
    name = formatReference(parseNormalized(stage.base.ref));
  } catch {
    return written;
  }
  const step = ctx.progress.step(`[internal] load metadata for ${name}`);
  try {
    const image = await ctx.bases.resolve(stage.base.ref, stage.platform);
    step.done();
    const ref = parseNormalized(image.reference);
    return `FROM ${formatReference({ ...ref, digest: undefined })}@${image.indexDigest ?? image.manifestDigest}`;
  } catch {
    step.done();
    return `FROM ${name}`;
  }
}

/** `--build-context`: an image name as written → the image it stands for (a directory becomes an image of one layer, once). */
export function namedContextSubstitute(
  store: Store,
  contexts: Map<string, NamedContext>,
  platform: Platform | undefined,
  epoch: number | undefined,
): (input: string) => Promise<string | undefined> {
  const dirs = new Map<string, Promise<string>>();
  return async (input) => {
    const named = lookupNamedContext(contexts, input);
    if (!named) return undefined;
    if (named.type === 'image') return named.ref;
    let made = dirs.get(named.dir);
    if (!made) {
      made = directoryImage(store, input, named.dir, platform, epoch);
      dirs.set(named.dir, made);
    }
    return made;
  };
}
