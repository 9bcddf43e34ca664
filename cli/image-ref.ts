import { familiarReference, formatReference, parseNormalized, parseReference } from '../oci/index.js';
import { ImageNotFoundError, resolveImage, type ImageRecord, type Store } from '../store/index.js';
import { builtImagesById } from '../builder/image/index.js';

const ID = /^(?:sha256:)?([a-f0-9]{4,64})$/;

/** Whether `input` may be an image id: docker's full `sha256:<64 hex>`, 64 hex, or a prefix such as the 12-character short id. */
export function looksLikeImageId(input: string): boolean {
  return ID.test(input);
}

/** The image id (config digest) of a record, or undefined when its content is missing. */
async function imageIdOf(store: Store, record: ImageRecord): Promise<string | undefined> {
  try {
    return (await resolveImage(store.blobs, record.digest)).manifest.config.digest;
  } catch {
    return undefined;
  }
}

/**
 * Every local name of the image an image id (a prefix of the config digest, as `tsbuild build -q` and
 * `tsbuild images` print it) stands for; empty when none matches. Two different images matching the
 * prefix is an error, as in docker.
 */
export async function recordsForId(store: Store, input: string): Promise<ImageRecord[]> {
  const m = ID.exec(input);
  if (!m) return [];
  const hex = m[1]!;
  const hits: Array<{ record: ImageRecord; id: string }> = [];
  for (const record of await store.images.list()) {
    const id = await imageIdOf(store, record);
    if (id?.slice(7).startsWith(hex)) hits.push({ record, id });
  }
  if (new Set(hits.map((h) => h.id)).size > 1)
    throw new Error(`image id ${input} is ambiguous: it matches ${new Set(hits.map((h) => h.id)).size} images; give more of it`);
  return hits.map((h) => h.record);
}

/** An image built without a name (`tsbuild build -q .`), found by its id; its record has no name. */
async function unnamedById(store: Store, input: string): Promise<ImageRecord | undefined> {
  const hex = ID.exec(input)?.[1];
  if (!hex) return undefined;
  const built = await builtImagesById(store, hex);
  if (new Set(built.map((b) => b.id)).size > 1) throw new Error(`image id ${input} is ambiguous: it matches ${built.length} images; give more of it`);
  const image = built[0];
  return image ? { name: '', digest: image.digest, mediaType: image.mediaType, updated: '' } : undefined;
}

/**
 * An image by any reference docker takes: a name (`app:v1`, `app@sha256:…`), a manifest digest, or an
 * image id (`sha256:<hex>`, full or short). Names win over ids, as in docker.
 */
export async function findImage(store: Store, input: string): Promise<ImageRecord & { byName: boolean }> {
  try {
    const record = await store.images.get(input);
    return { ...record, byName: record.name === nameOf(input) };
  } catch (e) {
    if (!(e instanceof ImageNotFoundError) || !looksLikeImageId(input)) throw e;
  }
  const records = await recordsForId(store, input);
  const record = records[0] ?? (await unnamedById(store, input));
  if (!record) throw new ImageNotFoundError(input);
  return { ...record, byName: false };
}

function nameOf(input: string): string | undefined {
  try {
    return formatReference(parseNormalized(input));
  } catch {
    return undefined;
  }
}

/** `docker.io/library/app:v1` → `app:v1`. */
export function familiarName(record: ImageRecord): string {
  return familiarReference(parseReference(record.name));
}
