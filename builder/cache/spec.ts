/**
 * `--cache-to` / `--cache-from` as buildx takes them:
 *
 *   type=registry,ref=REF[,mode=min|max]   a cache manifest in any registry (REF alone means this too)
 *   type=local,dest=DIR[,mode=…][,tag=T]   an OCI image layout directory (--cache-to)
 *   type=local,src=DIR[,tag=T]             (--cache-from)
 *   type=inline                            the cache config inside the pushed image's config (--cache-to);
 *                                          read back with --cache-from type=registry,ref=IMAGE
 *
 * `mode` is BuildKit's: min (default) exports the steps of the final image only, max every stage's steps
 * and the contents of `RUN --mount=type=cache` dirs. BuildKit's export options (registry and local):
 * `compression=gzip|zstd|uncompressed`, `compression-level=N`, `force-compression=true|false` as for an
 * output; `ignore-error=true` makes a failed export a warning; `oci-mediatypes` and `image-manifest` are
 * accepted as true, what tsbuild writes (an OCI image manifest: BuildKit's default since v0.21), and
 * refused as false. `--cache-from type=local` takes `digest=sha256:…` (that manifest rather than the tag).
 * Any other option is refused: none is silently dropped.
 */
import type { Digest } from '../../oci/index.js';
import { layerCompressionOf } from '../image/output-spec.js';
import type { LayerCompression } from '../../oci/index.js';

export type CacheMode = 'min' | 'max';

/** How an exported cache's layers are compressed (BuildKit's default: gzip, layers already compressed kept). */
export interface CacheEncoding {
  compression: LayerCompression;
  /** gzip 0–9, zstd 1–22; the compressor's default when absent. */
  level?: number;
  force: boolean;
}

/** What every exported (not inline) cache takes besides where it goes. */
interface ExportOptions {
  mode: CacheMode;
  encoding: CacheEncoding;
  /** `ignore-error=true`: a failed export is a warning and the build still succeeds, as in BuildKit. */
  ignoreError: boolean;
}

export type CacheExportSpec =
  | ({ type: 'registry'; ref: string } & ExportOptions)
  | ({ type: 'local'; dest: string; tag: string } & ExportOptions)
  | { type: 'inline'; mode: 'min' };

export type CacheImportSpec = { type: 'registry'; ref: string } | { type: 'local'; src: string; tag: string; digest?: Digest };

/** Export options every exported cache takes (validated in exportOptions). */
const EXPORT_OPTIONS = ['mode', 'compression', 'compression-level', 'force-compression', 'ignore-error', 'oci-mediatypes', 'image-manifest'];

function fields(flag: string, spec: string): Map<string, string> {
  const out = new Map<string, string>();
  if (!spec.includes('=')) {
    out.set('type', 'registry');
    out.set('ref', spec);
    return out;
  }
  for (const part of spec.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new Error(`${flag} "${spec}": expected key=value pairs such as type=registry,ref=REGISTRY/NAME:TAG`);
    out.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return out;
}

function refuseUnknown(flag: string, spec: string, f: Map<string, string>, known: string[]): void {
  for (const key of f.keys()) {
    if (!known.includes(key)) throw new Error(`${flag} "${spec}": unknown option "${key}" (known: ${known.join(', ')})`);
  }
}

function bool(flag: string, spec: string, f: Map<string, string>, key: string): boolean | undefined {
  const value = f.get(key);
  if (value === undefined) return undefined;
  if (value === 'true' || value === '1' || value === '') return true;
  if (value === 'false' || value === '0') return false;
  throw new Error(`${flag} "${spec}": ${key} must be true or false, not "${value}"`);
}

function exportOptions(flag: string, spec: string, f: Map<string, string>): ExportOptions {
  for (const key of ['oci-mediatypes', 'image-manifest'])
    if (bool(flag, spec, f, key) === false)
      throw new Error(`${flag} "${spec}": ${key}=false is not supported: tsbuild writes the cache as an OCI image manifest (BuildKit's default)`);
  const { compression, level } = layerCompressionOf(flag, spec, f);
  return {
    mode: modeOf(flag, spec, f.get('mode')),
    encoding: { compression, ...(level !== undefined ? { level } : {}), force: bool(flag, spec, f, 'force-compression') ?? false },
    ignoreError: bool(flag, spec, f, 'ignore-error') ?? false,
  };
}

function modeOf(flag: string, spec: string, value: string | undefined): CacheMode {
  if (value === undefined || value === 'min') return 'min';
  if (value === 'max') return 'max';
  throw new Error(`${flag} "${spec}": mode must be min or max, not "${value}"`);
}

/** `type=registry,ref=REF[,…]`: the cache's image reference, required. */
function registryRef(flag: string, spec: string, f: Map<string, string>, known: string[]): string {
  refuseUnknown(flag, spec, f, ['type', 'ref', ...known]);
  const ref = f.get('ref');
  if (!ref) throw new Error(`${flag} "${spec}": ref=REGISTRY/NAME:TAG is required`);
  return ref;
}

export function parseCacheTo(spec: string): CacheExportSpec {
  const flag = '--cache-to';
  const f = fields(flag, spec);
  const type = f.get('type');
  if (type === 'registry') return { type, ref: registryRef(flag, spec, f, EXPORT_OPTIONS), ...exportOptions(flag, spec, f) };
  if (type === 'local') {
    refuseUnknown(flag, spec, f, ['type', 'dest', 'tag', ...EXPORT_OPTIONS]);
    const dest = f.get('dest');
    if (!dest) throw new Error(`${flag} "${spec}": dest=DIR is required`);
    return { type, dest, tag: f.get('tag') || 'latest', ...exportOptions(flag, spec, f) };
  }
  if (type === 'inline') {
    refuseUnknown(flag, spec, f, ['type', 'mode']);
    if (f.get('mode') === 'max')
      throw new Error(`${flag} "${spec}": an inline cache holds the final image's steps only (mode=min); use type=registry for mode=max`);
    return { type, mode: 'min' };
  }
  throw new Error(`${flag} "${spec}": type must be registry, local or inline`);
}

export function parseCacheFrom(spec: string): CacheImportSpec {
  const flag = '--cache-from';
  const f = fields(flag, spec);
  const type = f.get('type');
  if (type === 'registry') return { type, ref: registryRef(flag, spec, f, ['mode']) };
  if (type === 'local') {
    refuseUnknown(flag, spec, f, ['type', 'src', 'tag', 'digest', 'mode']);
    const src = f.get('src');
    if (!src) throw new Error(`${flag} "${spec}": src=DIR is required`);
    const digest = f.get('digest');
    if (digest !== undefined && !/^sha256:[a-f0-9]{64}$/.test(digest)) throw new Error(`${flag} "${spec}": digest must be sha256:<64 hex digits>`);
    return { type, src, tag: f.get('tag') || 'latest', ...(digest ? { digest: digest as Digest } : {}) };
  }
  throw new Error(`${flag} "${spec}": type must be registry or local (an inline cache is read with type=registry,ref=IMAGE)`);
}
