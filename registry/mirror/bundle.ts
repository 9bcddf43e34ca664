/**
 * Bundles: cached images carried across an air gap with their digests intact (`tsbuild mirror export` /
 * `import`). A bundle is an OCI image layout in a tar — `oci-layout`, `index.json`, `blobs/<alg>/<hex>` —
 * so skopeo, umoci or containerd can read it too. Each index.json entry is one cached reference:
 *
 *   org.opencontainers.image.ref.name   the tag (`latest`), as skopeo's `oci-archive:FILE:TAG` looks up
 *   io.containerd.image.name            the full reference (`docker.io/library/busybox:latest`)
 *   io.tsbuild.mirror.ref               the same: the upstream registry, repository and tag (or @digest)
 *                                       the mirror serves it as; import caches it under that name
 *
 * A bundle holds exactly what the cache holds: for an index, the platforms cached (an index pulled for
 * linux/amd64 only exports that platform's manifest and blobs; the index's bytes, and so its digest, are
 * unchanged, and listing platforms that are absent is what a pull of one platform leaves everywhere).
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import { PassThrough, Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import {
  digestAlgorithm,
  digestHex,
  familiarReference,
  formatPlatform,
  formatReference,
  ImageDocumentError,
  MediaType,
  parseDigest,
  parseImageDocument,
  parseReference,
  type Descriptor,
  type Digest,
  type ImageIndex,
  type Reference,
} from '../../oci/index.js';
import { deleteUnheld, IMAGE_NAME, REF_NAME, tempName, type Store } from '../../store/index.js';
import { cachedName } from './routing.js';
import { noteUpstreams } from './stats.js';

export const MIRROR_REF = 'io.tsbuild.mirror.ref';
/** Larger than any manifest or index.json a registry or layout should have (distribution: 4 MiB). */
const MAX_DOCUMENT = 4 << 20;

/** One image of a bundle. */
export interface BundleImage {
  /** `docker.io/library/busybox:latest` (or `…@sha256:…`). */
  reference: string;
  /** The cached repository: `docker.io/library/busybox`. */
  repository: string;
  digest: Digest;
  mediaType: string;
  size: number;
  /** Platforms of an index that are in the bundle. */
  platforms: string[];
}

export interface BundleSummary {
  images: BundleImage[];
  /** Distinct blobs (manifests included) and their bytes. */
  blobs: number;
  bytes: number;
}

/** The tree of one cached image: manifests and blobs to write, children before parents. */
interface Tree {
  digests: Map<Digest, number>;
  platforms: string[];
}

/** Reads a cached image's document from the store, parsed as Go clients read it. */
async function readDocument(store: Store, digest: Digest, mediaType: string | undefined) {
  const bytes = await store.blobs.readBuffer(digest);
  return { bytes, doc: parseImageDocument(bytes, { mediaType }) };
}

/**
 * Adds what of `digest` the cache holds under `repository` to `tree`. An index keeps the children that
 * are cached whole; a child missing anything is left out (`onWarning`); a top-level manifest missing a
 * blob is an error (sync it first).
 */
async function collect(
  store: Store,
  repository: string,
  desc: { digest: Digest; mediaType?: string },
  tree: Tree,
  name: string,
  onWarning: (m: string) => void,
  top: boolean,
): Promise<boolean> {
  const link = await store.repositories.getManifestLink(repository, desc.digest);
  if (!link || !(await store.blobs.has(desc.digest))) {
    if (top) throw new Error(`${name}: manifest ${desc.digest} is not cached in this store; run tsbuild mirror sync ${name}`);
    return false;
  }
  const { bytes, doc } = await readDocument(store, desc.digest, link.mediaType);
  const local = new Map<Digest, number>();
  if (doc.kind === 'index') {
    const sub: Tree = { digests: new Map(), platforms: [] };
    for (const child of doc.index.manifests) {
      const shown = child.platform ? formatPlatform(child.platform) : child.digest;
      if (await collect(store, repository, child, sub, name, onWarning, false)) {
        if (child.platform) tree.platforms.push(shown);
      } else onWarning(`${name}: ${shown} (${child.digest}) is not cached; the bundle leaves it out`);
    }
    for (const [d, s] of sub.digests) local.set(d, s);
    tree.platforms.push(...sub.platforms);
  } else {
    for (const blob of [doc.manifest.config, ...doc.manifest.layers]) {
      if (blob.urls?.length) continue;
      const info = await store.blobs.stat(blob.digest);
      if (!info) {
        if (top) throw new Error(`${name}: blob ${blob.digest} is not cached in this store; run tsbuild mirror sync ${name}`);
        return false;
      }
      local.set(blob.digest, info.size);
    }
  }
  for (const [d, s] of local) tree.digests.set(d, s);
  tree.digests.set(desc.digest, bytes.length);
  return true;
}

function entryHeader(name: string, size: number): Partial<tar.Header> & { name: string } {
  return { name, size, mode: 0o644, mtime: new Date(0), uid: 0, gid: 0, type: 'file' };
}

/** Writes one tar entry from a stream or bytes, resolving once tar-stream took all of it. */
function writeEntry(pack: tar.Pack, name: string, size: number, body: Readable | Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    if (Buffer.isBuffer(body)) {
      pack.entry(entryHeader(name, size), body, (e) => (e ? reject(e) : resolve()));
      return;
    }
    const sink = pack.entry(entryHeader(name, size), (e) => (e ? reject(e) : resolve()));
    pipeline(body, sink).catch(reject);
  });
}

/**
 * Writes the cached images `references` (normalized) to `dest` as a bundle; the file appears only once
 * complete. Throws when an image is not cached (naming it and the repository it would be cached under).
 */
export async function exportBundle(
  store: Store,
  references: Reference[],
  dest: string,
  onWarning: (message: string) => void = () => undefined,
): Promise<BundleSummary> {
  const images: BundleImage[] = [];
  const all = new Map<Digest, number>();
  const index: ImageIndex = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] };
  for (const ref of references) {
    const name = familiarReference(ref);
    const repository = cachedName(ref.registry, ref.repository);
    const digest = ref.digest ?? (await store.repositories.resolveTag(repository, ref.tag ?? 'latest'));
    if (!digest) throw new Error(`${name} is not cached in this store (no tag ${ref.tag ?? 'latest'} in ${repository}); run tsbuild mirror sync ${name} first`);
    const link = await store.repositories.getManifestLink(repository, digest);
    if (!link) throw new Error(`${name}: ${digest} is not cached in ${repository}; run tsbuild mirror sync ${name} first`);
    const tree: Tree = { digests: new Map(), platforms: [] };
    await collect(store, repository, { digest, mediaType: link.mediaType }, tree, name, onWarning, true);
    for (const [d, s] of tree.digests) all.set(d, s);
    const reference = formatReference(ref);
    images.push({ reference, repository, digest, mediaType: link.mediaType, size: link.size, platforms: tree.platforms });
    const annotations: Record<string, string> = { [IMAGE_NAME]: reference, [MIRROR_REF]: reference };
    if (ref.tag !== undefined && !ref.digest) annotations[REF_NAME] = ref.tag;
    index.manifests.push({ mediaType: link.mediaType, digest, size: link.size, annotations });
  }
  const tmp = tempName(dest);
  const pack = tar.pack();
  const written = pipeline(pack, createWriteStream(tmp));
  written.catch(() => undefined);
  try {
    const layout = Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    await writeEntry(pack, 'oci-layout', layout.length, layout);
    const indexBytes = Buffer.from(JSON.stringify(index));
    await writeEntry(pack, 'index.json', indexBytes.length, indexBytes);
    let bytes = 0;
    for (const [digest, size] of all) {
      await writeEntry(pack, `blobs/${digestAlgorithm(digest)}/${digestHex(digest)}`, size, await store.blobs.read(digest));
      bytes += size;
    }
    pack.finalize();
    await written;
    await fs.rename(tmp, dest);
    return { images, blobs: all.size, bytes };
  } catch (e) {
    pack.destroy();
    await written.catch(() => undefined);
    await fs.rm(tmp, { force: true });
    throw e;
  }
}

/** Passes bytes through while hashing them; fails the stream when they do not hash to `digest`. */
function verifying(digest: Digest, size: number, what: string): Transform {
  const hash = createHash(digestAlgorithm(digest));
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      seen += chunk.length;
      done(null, chunk);
    },
    flush(done) {
      const actual = `${digestAlgorithm(digest)}:${hash.digest('hex')}`;
      if (seen !== size) done(new Error(`${what}: ${digest} is ${seen} bytes, its tar entry says ${size}`));
      else if (actual !== digest) done(new Error(`${what}: blob ${digest} holds bytes hashing to ${actual}`));
      else done();
    },
  });
}

async function readAll(stream: Readable, limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of stream) {
    n += (c as Buffer).length;
    if (n > limit) throw new Error(`${what} is larger than ${limit} bytes`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

/** The bundle's bytes, gunzipped when the file is gzip (a `bundle.tar.gz`). */
async function openBundle(file: string): Promise<Readable> {
  const fh = await fs.open(file, 'r');
  const head = Buffer.alloc(2);
  try {
    await fh.read(head, 0, 2, 0);
  } finally {
    await fh.close();
  }
  const raw = createReadStream(file, { highWaterMark: 1 << 20 });
  if (head[0] !== 0x1f || head[1] !== 0x8b) return raw;
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  pipeline(raw, createGunzip(), out).catch((e) => out.destroy(e));
  return out;
}

/** Which reference an index.json entry caches (our annotation, else containerd's full name). */
function entryReference(desc: Descriptor, i: number, file: string): Reference {
  const named = desc.annotations?.[MIRROR_REF] ?? desc.annotations?.[IMAGE_NAME];
  if (!named) throw new Error(`${file}: index.json entry ${i} (${desc.digest}) names no image: it needs an ${MIRROR_REF} or ${IMAGE_NAME} annotation`);
  let ref: Reference;
  try {
    ref = parseReference(named);
  } catch (e) {
    throw new Error(`${file}: index.json entry ${i}: ${(e as Error).message}`);
  }
  if (ref.digest && ref.digest !== desc.digest) throw new Error(`${file}: index.json entry ${i} is ${desc.digest} but names ${named}`);
  return ref;
}

/**
 * Links a cached image's tree under `repository`, children and blobs before the document that lists
 * them, so a reader never finds a manifest whose content is missing. Children of an index that the
 * bundle left out are skipped; a manifest whose blobs are absent is an error.
 */
async function linkTree(
  store: Store,
  repository: string,
  desc: { digest: Digest; mediaType: string; size: number },
  file: string,
  used: Set<Digest>,
  top: boolean,
): Promise<boolean> {
  if (!(await store.blobs.has(desc.digest))) {
    if (top) throw new Error(`${file}: the bundle lacks ${desc.digest}, which its index.json names`);
    return false;
  }
  let doc;
  try {
    doc = (await readDocument(store, desc.digest, desc.mediaType)).doc;
  } catch (e) {
    if (e instanceof ImageDocumentError) throw new Error(`${file}: ${desc.digest} is not a valid image document: ${e.message}`);
    throw e;
  }
  if (doc.kind === 'index') {
    for (const child of doc.index.manifests) await linkTree(store, repository, child, file, used, false);
  } else {
    const blobs = [doc.manifest.config, ...doc.manifest.layers].filter((b) => !b.urls?.length);
    for (const b of blobs) if (!(await store.blobs.has(b.digest))) throw new Error(`${file}: the bundle lacks blob ${b.digest} of ${desc.digest}`);
    for (const b of blobs) {
      used.add(b.digest);
      await store.repositories.linkBlob(repository, b.digest);
    }
  }
  used.add(desc.digest);
  await store.repositories.linkManifest(repository, { digest: desc.digest, mediaType: doc.mediaType, size: desc.size });
  return true;
}

/**
 * Imports a bundle (plain or gzipped tar) into the store as cached content: every blob is streamed,
 * verified against its name and committed (blobs the store has are verified and skipped), then each
 * image is linked under the cached name of its reference and its tag set last. Works beside a registry
 * serving the store (every write is an atomic rename). Blobs the bundle carries that no image uses are
 * not kept. Throws one-line errors naming the bundle and what is wrong; nothing is tagged then.
 */
export async function importBundle(store: Store, file: string): Promise<BundleSummary> {
  const extract = tar.extract();
  const source = await openBundle(file);
  const feeding = pipeline(source, extract);
  feeding.catch(() => undefined);
  let indexBytes: Buffer | undefined;
  let layoutSeen = false;
  const imported = new Set<Digest>();
  const added: Digest[] = [];
  let bytes = 0;
  try {
    for await (const item of extract) {
      // tar-stream's entries are streamx readables; Node's stream functions take them.
      const entry = item as unknown as Readable & { header: tar.Header };
      const name = entry.header.name.replace(/^\.\//, '');
      const blob = /^blobs\/([a-z0-9]+)\/([a-f0-9]+)$/.exec(name);
      if (entry.header.type !== 'file' && entry.header.type !== 'contiguous-file') {
        entry.resume();
      } else if (name === 'oci-layout') {
        const layout = JSON.parse((await readAll(entry, 4096, `${file}: oci-layout`)).toString('utf8')) as { imageLayoutVersion?: string };
        if (layout.imageLayoutVersion !== '1.0.0') throw new Error(`${file}: unsupported imageLayoutVersion ${JSON.stringify(layout.imageLayoutVersion)}`);
        layoutSeen = true;
      } else if (name === 'index.json') {
        indexBytes = await readAll(entry, MAX_DOCUMENT, `${file}: index.json`);
      } else if (blob) {
        let digest: Digest;
        try {
          digest = parseDigest(`${blob[1]}:${blob[2]}`);
        } catch {
          entry.resume();
          continue;
        }
        const size = entry.header.size ?? 0;
        if (await store.blobs.has(digest)) {
          await pipeline(entry, verifying(digest, size, file), new PassThrough().resume());
        } else {
          try {
            await store.blobs.write(entry, { digest, size });
          } catch (e) {
            throw new Error(`${file}: blob ${digest}: ${(e as Error).message.split('\n')[0]}`);
          }
          added.push(digest);
        }
        imported.add(digest);
        bytes += size;
      } else {
        entry.resume();
      }
    }
    await feeding;
  } catch (e) {
    extract.destroy();
    await deleteUnheld(store, added, { minAgeMs: 0 }).catch(() => undefined);
    throw e;
  }
  if (!layoutSeen || !indexBytes) throw new Error(`${file} is not an OCI image layout tar (no ${layoutSeen ? 'index.json' : 'oci-layout'})`);
  let index: ImageIndex;
  try {
    const doc = parseImageDocument(indexBytes, { mediaType: MediaType.ociIndex });
    if (doc.kind !== 'index') throw new ImageDocumentError('', 'not an image index');
    index = doc.index;
  } catch (e) {
    throw new Error(`${file}: index.json is invalid: ${(e as Error).message}`);
  }
  const images: BundleImage[] = [];
  const used = new Set<Digest>();
  const refs = index.manifests.map((desc, i) => ({ desc, ref: entryReference(desc, i, file) }));
  for (const { desc, ref } of refs) {
    const repository = cachedName(ref.registry, ref.repository);
    await linkTree(store, repository, desc, file, used, true);
    if (ref.tag !== undefined && !ref.digest) await store.repositories.setTag(repository, ref.tag, desc.digest);
    images.push({ reference: formatReference(ref), repository, digest: desc.digest, mediaType: desc.mediaType, size: desc.size, platforms: [] });
  }
  await noteUpstreams(
    store.driver,
    refs.map(({ ref }) => ref.registry),
  );
  const unused = added.filter((d) => !used.has(d));
  if (unused.length > 0) await deleteUnheld(store, unused, { minAgeMs: 0 });
  return { images, blobs: imported.size, bytes };
}
