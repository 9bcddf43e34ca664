import type { Digest, LayerCompression } from '../../oci/index.js';
import type { MediaFamily } from './media-family.js';

/** How an output's layers are compressed (BuildKit's exporter options). */
export interface LayerEncoding {
  compression: LayerCompression;
  /** gzip 0–9 (default 6), zstd 1–22 (default 3). */
  level?: number;
  /** Recompress layers that already have another compression (a base image's). */
  force: boolean;
  /** The media types of the written manifest. */
  family: MediaFamily;
  /** Bytes of a layer read so far while it is compressed (a 500 MB layer takes seconds: show them). */
  onProgress?: (layer: Digest, done: number, total: number) => void;
}

/**
 * `--output type=oci,dest=DIR|FILE.tar` or `type=docker,dest=FILE.tar`, with BuildKit's options:
 * `tar=true|false` (oci: a layout dir or a tar), `compression=gzip|zstd|uncompressed` (default gzip),
 * `compression-level=N`, `force-compression=true|false`, `oci-mediatypes=true|false` (default true for
 * oci, false for docker), `name=REF` (the names in the archive; default the -t names).
 */
export interface OutputSpec extends LayerEncoding {
  type: 'oci' | 'docker';
  dest: string;
  /** For oci: a directory layout rather than a tar. */
  directory: boolean;
  names?: string[];
}

/**
 * `-o type=local,dest=DIR` (the final stage's filesystem written into DIR) or `type=tar[,dest=FILE|-]` (that
 * filesystem as one tar; no dest or `-` is standard output), as buildx; `-o DIR` alone means type=local and
 * `-o -` type=tar to standard output.
 */
export interface FilesystemOutputSpec {
  type: 'local' | 'tar';
  dest: string;
}

/** What `-o` asks for: an image (oci, docker) or the final stage's filesystem (local, tar). */
export type BuildOutputSpec = OutputSpec | FilesystemOutputSpec;

export function isFilesystemOutput(out: BuildOutputSpec): out is FilesystemOutputSpec {
  return out.type === 'local' || out.type === 'tar';
}

const KNOWN = ['type', 'dest', 'tar', 'compression', 'compression-level', 'force-compression', 'oci-mediatypes', 'name'];
const TYPES = 'type must be oci, docker (images), local (a directory) or tar (a tar of the filesystem)';

function bool(spec: string, key: string, value: string | undefined, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (value === 'true' || value === '') return true;
  if (value === 'false') return false;
  throw new Error(`--output "${spec}": ${key} must be true or false, not "${value}"`);
}

/**
 * BuildKit's `compression=gzip|zstd|uncompressed` (default gzip) and `compression-level=N` (gzip 0–9, zstd
 * 1–22) of an output or a cache export.
 * @throws Error `FLAG "SPEC": …` for a value outside those
 */
export function layerCompressionOf(flag: string, spec: string, fields: Map<string, string>): { compression: LayerCompression; level?: number } {
  const named = fields.get('compression') ?? 'gzip';
  const compression: LayerCompression | undefined = named === 'uncompressed' ? 'none' : named === 'gzip' || named === 'zstd' ? named : undefined;
  if (!compression) throw new Error(`${flag} "${spec}": compression must be gzip, zstd or uncompressed, not "${named}"`);
  const levelText = fields.get('compression-level');
  if (levelText === undefined) return { compression };
  const [min, max] = compression === 'zstd' ? [1, 22] : [0, 9];
  const level = Number(levelText);
  if (compression === 'none') throw new Error(`${flag} "${spec}": compression-level needs compression=gzip or zstd`);
  if (!/^\d+$/.test(levelText) || level < min || level > max)
    throw new Error(`${flag} "${spec}": compression-level for ${compression} must be ${min} to ${max}, not "${levelText}"`);
  return { compression, level };
}

export function parseOutputSpec(spec: string): BuildOutputSpec {
  // buildx: a value without key=value pairs is a destination: `-` a tar on standard output, else a directory
  if (!spec.includes('=') && spec.trim() !== '') return spec.trim() === '-' ? { type: 'tar', dest: '-' } : { type: 'local', dest: spec.trim() };
  const fields = new Map<string, string>();
  for (const part of spec.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) throw new Error(`--output "${spec}": expected key=value pairs such as type=oci,dest=out.tar`);
    const key = part.slice(0, eq).trim();
    if (!KNOWN.includes(key)) throw new Error(`--output "${spec}": unknown option "${key}" (known: ${KNOWN.join(', ')})`);
    fields.set(key, part.slice(eq + 1).trim());
  }
  const type = fields.get('type');
  const dest = fields.get('dest');
  if (type === 'local' || type === 'tar') {
    for (const key of fields.keys()) if (key !== 'type' && key !== 'dest') throw new Error(`--output "${spec}": type=${type} takes only dest=, not "${key}"`);
    if (type === 'local' && (!dest || dest === '-')) throw new Error(`--output "${spec}": type=local needs dest=DIR`);
    return { type, dest: dest || '-' };
  }
  if (type !== 'oci' && type !== 'docker') throw new Error(`--output "${spec}": ${TYPES}${type === undefined ? '' : `, not "${type}"`}`);
  if (!dest) throw new Error(`--output "${spec}": dest=PATH is required`);
  const tarRequested = fields.get('tar');
  if (type === 'docker' && tarRequested === 'false') throw new Error(`--output "${spec}": type=docker writes a tar; use type=oci,tar=false for a directory`);
  // dest=- is standard output: always a tar
  if (dest === '-' && tarRequested === 'false') throw new Error(`--output "${spec}": dest=- (standard output) takes a tar; tar=false needs a directory`);
  const directory = type === 'oci' && dest !== '-' && !bool(spec, 'tar', tarRequested, /\.tar$/i.test(dest));

  const { compression, level } = layerCompressionOf('--output', spec, fields);
  const family: MediaFamily = bool(spec, 'oci-mediatypes', fields.get('oci-mediatypes'), type === 'oci') ? 'oci' : 'docker';
  if (family === 'docker' && compression === 'zstd')
    throw new Error(`--output "${spec}": docker media types have no zstd layers; add oci-mediatypes=true or use compression=gzip`);
  const name = fields.get('name');
  return {
    type,
    dest,
    directory,
    compression,
    ...(level !== undefined ? { level } : {}),
    force: bool(spec, 'force-compression', fields.get('force-compression'), false),
    family,
    ...(name ? { names: [name] } : {}),
  };
}
