import { createReadStream, promises as fs } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { decompress } from '../snapshot/index.js';
import {
  GoStruct,
  JsonFieldError,
  JsonSyntaxError,
  MediaType,
  parseJsonTree,
  parseNormalized,
  readArray,
  readString,
  readStringList,
  readStruct,
  type Digest,
  type ImageConfig,
  type ImageManifest,
} from '../../oci/index.js';
import { importOciLayout, tempName, type Store } from '../../store/index.js';
import { tagImage } from './write-image.js';

export interface LoadedImage {
  digest: Digest;
  names: string[];
}

/** Unpacks a tar's regular files into dir, refusing names that would land outside it. */
async function extractArchive(file: string | NodeJS.ReadableStream, dir: string): Promise<void> {
  const extract = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      const name = posix.normalize('/' + header.name).slice(1);
      if (header.type !== 'file' || name === '' || name.startsWith('..')) {
        stream.resume();
        stream.on('end', next);
        return;
      }
      const target = join(dir, name);
      fs.mkdir(dirname(target), { recursive: true })
        .then(() => pipeline(stream, createWriteStream(target)))
        .then(() => next(), reject);
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  // docker load takes a compressed archive too (docker save IMAGE | gzip | docker load)
  const source = typeof file === 'string' ? createReadStream(file) : Readable.from(file as AsyncIterable<Buffer>);
  await pipeline(await decompress(source, 'auto'), extract);
  await done;
}

async function exists(path: string): Promise<boolean> {
  return fs.access(path).then(
    () => true,
    () => false,
  );
}

/** The compression of a layer file, from its first bytes. */
async function sniffLayer(path: string): Promise<string> {
  const fh = await fs.open(path, 'r');
  try {
    const head = Buffer.alloc(6);
    await fh.read(head, 0, 6, 0);
    if (head[0] === 0x1f && head[1] === 0x8b) return MediaType.ociLayerGzip;
    if (head.subarray(0, 4).equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) return MediaType.ociLayerZstd;
    return MediaType.ociLayer;
  } finally {
    await fh.close();
  }
}

interface ArchiveEntry {
  Config: string;
  RepoTags?: string[];
  Layers: string[];
}

// moby's image/tarexport manifestItem: untagged fields, so the JSON names are the Go names.
const ARCHIVE_ENTRY = new GoStruct(['Config', 'RepoTags', 'Layers', 'Parent', 'LayerSources']);

/**
 * `docker save`'s manifest.json, read as `docker load` reads it (Go's encoding/json: keys match
 * case-insensitively, so `config` would be docker's Config): a variant spelling, a field given twice
 * or a wrong type is refused with its path, e.g. `manifest.json: [0].Layers[1]: must be a string`.
 */
function parseArchiveManifest(bytes: Buffer): ArchiveEntry[] {
  try {
    const items = readArray(parseJsonTree(bytes), '');
    if (items === undefined) throw new JsonFieldError('', 'must be a list of images, not null');
    return items.map((item, i) => {
      const path = `[${i}]`;
      const f = readStruct(item, path, ARCHIVE_ENTRY, 'an image entry');
      if (f === undefined) throw new JsonFieldError(path, 'is null; an image entry is an object');
      const config = readString(f.get('Config'), `${path}.Config`);
      if (!config) throw new JsonFieldError(`${path}.Config`, 'missing');
      const layers = readStringList(f.get('Layers'), `${path}.Layers`) ?? [];
      const repoTags = readStringList(f.get('RepoTags'), `${path}.RepoTags`);
      return { Config: config, Layers: layers, ...(repoTags ? { RepoTags: repoTags } : {}) };
    });
  } catch (e) {
    if (e instanceof JsonFieldError || e instanceof JsonSyntaxError) throw new Error(`the archive's manifest.json is invalid: ${e.message}`);
    throw e;
  }
}

async function importDockerArchive(store: Store, dir: string): Promise<LoadedImage[]> {
  const entries = parseArchiveManifest(await fs.readFile(join(dir, 'manifest.json')));
  const out: LoadedImage[] = [];
  for (const entry of entries) {
    const inside = (p: string) => join(dir, posix.normalize('/' + p).slice(1));
    const configBytes = await fs.readFile(inside(entry.Config));
    const config = JSON.parse(configBytes.toString('utf8')) as ImageConfig;
    if ((config.rootfs?.diff_ids ?? []).length !== entry.Layers.length) {
      throw new Error(
        `archive entry ${entry.Config} lists ${entry.Layers.length} layers but its config has ${config.rootfs?.diff_ids?.length ?? 0} diff_ids; the archive is damaged`,
      );
    }
    const cfg = await store.blobs.put(configBytes);
    const layers = [];
    for (const layerPath of entry.Layers) {
      const path = inside(layerPath);
      const mediaType = await sniffLayer(path);
      const blob = await store.blobs.write(createReadStream(path, { highWaterMark: 1 << 20 }));
      layers.push({ mediaType, digest: blob.digest, size: blob.size });
    }
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: cfg.digest, size: cfg.size },
      layers,
    };
    const bytes = JSON.stringify(manifest);
    const m = await store.blobs.put(bytes);
    const names = entry.RepoTags ?? [];
    await tagImage(store, { digest: m.digest, size: m.size, mediaType: MediaType.ociManifest, configDigest: cfg.digest, manifest }, names);
    out.push({ digest: m.digest, names });
  }
  return out;
}

/**
 * Loads a docker-archive (`docker save`) or an OCI image layout tar into the store and names its
 * images as the archive says (RepoTags; or io.containerd.image.name / org.opencontainers.image.ref.name).
 */
/** `file` may be a stream (`docker save REF | tsbuild load`). */
export async function loadImageArchive(store: Store, file: string | NodeJS.ReadableStream): Promise<LoadedImage[]> {
  if (typeof file === 'string' && !(await exists(file))) throw new Error(`archive ${file} does not exist`);
  const dir = tempName(join(await store.localDir('tmp'), 'load'));
  await fs.mkdir(dir, { recursive: true });
  try {
    await extractArchive(file, dir);
    if (await exists(join(dir, 'manifest.json'))) return await importDockerArchive(store, dir);
    if (await exists(join(dir, 'index.json'))) {
      const images = await importOciLayout(store.blobs, dir);
      const out: LoadedImage[] = [];
      for (const image of images) {
        const name = image.name ?? (image.tag && /[/:]/.test(image.tag) ? image.tag : undefined);
        const names = name ? [name] : [];
        for (const n of names) await store.images.set(parseNormalized(n), image.digest, image.mediaType);
        out.push({ digest: image.digest, names });
      }
      return out;
    }
    throw new Error(
      `${typeof file === 'string' ? file : 'the archive on standard input'} is neither a docker archive (manifest.json) nor an OCI layout (index.json)`,
    );
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
