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
 * and the contents of `RUN --mount=type=cache` dirs. BuildKit options tsbuild accepts and does not need
 * (`image-manifest`, `oci-mediatypes`, `ignore-error`, `compression*`) are ignored; anything else is refused.
 */
export type CacheMode = 'min' | 'max';

export type CacheExportSpec =
  | { type: 'registry'; ref: string; mode: CacheMode }
  | { type: 'local'; dest: string; mode: CacheMode; tag: string }
  | { type: 'inline'; mode: 'min' };

export type CacheImportSpec = { type: 'registry'; ref: string } | { type: 'local'; src: string; tag: string };

const IGNORED = ['image-manifest', 'oci-mediatypes', 'ignore-error', 'compression', 'compression-level', 'force-compression', 'store', 'digest'];

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
    if (!known.includes(key) && !IGNORED.includes(key)) throw new Error(`${flag} "${spec}": unknown option "${key}" (known: ${known.join(', ')})`);
  }
}

function modeOf(flag: string, spec: string, value: string | undefined): CacheMode {
  if (value === undefined || value === 'min') return 'min';
  if (value === 'max') return 'max';
  throw new Error(`${flag} "${spec}": mode must be min or max, not "${value}"`);
}

/** `type=registry,ref=REF[,mode=…]`: the cache's image reference, required. */
function registryRef(flag: string, spec: string, f: Map<string, string>): string {
  refuseUnknown(flag, spec, f, ['type', 'ref', 'mode']);
  const ref = f.get('ref');
  if (!ref) throw new Error(`${flag} "${spec}": ref=REGISTRY/NAME:TAG is required`);
  return ref;
}

export function parseCacheTo(spec: string): CacheExportSpec {
  const flag = '--cache-to';
  const f = fields(flag, spec);
  const type = f.get('type');
  if (type === 'registry') return { type, ref: registryRef(flag, spec, f), mode: modeOf(flag, spec, f.get('mode')) };
  if (type === 'local') {
    refuseUnknown(flag, spec, f, ['type', 'dest', 'mode', 'tag']);
    const dest = f.get('dest');
    if (!dest) throw new Error(`${flag} "${spec}": dest=DIR is required`);
    return { type, dest, mode: modeOf(flag, spec, f.get('mode')), tag: f.get('tag') || 'latest' };
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
  if (type === 'registry') return { type, ref: registryRef(flag, spec, f) };
  if (type === 'local') {
    refuseUnknown(flag, spec, f, ['type', 'src', 'tag', 'mode']);
    const src = f.get('src');
    if (!src) throw new Error(`${flag} "${spec}": src=DIR is required`);
    return { type, src, tag: f.get('tag') || 'latest' };
  }
  throw new Error(`${flag} "${spec}": type must be registry or local (an inline cache is read with type=registry,ref=IMAGE)`);
}
