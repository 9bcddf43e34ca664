/** `RUN --mount=type=cache|bind|tmpfs|secret|ssh,...` parsed into typed mounts, with BuildKit's defaults and checks. */
import { FrontendProblem } from './errors.js';

export type MountType = 'bind' | 'cache' | 'tmpfs' | 'secret' | 'ssh';
export type CacheSharing = 'shared' | 'private' | 'locked';

export interface RunMount {
  type: MountType;
  /** Stage name/index or image the bind/cache source comes from; empty = the build context (bind) or a new cache. */
  from?: string;
  source?: string;
  target?: string;
  readOnly: boolean;
  /** tmpfs size in bytes. */
  size?: number;
  /** Cache id (cache) or secret/ssh id. */
  id?: string;
  sharing?: CacheSharing;
  /** secret/ssh: fail when the secret is not provided. */
  required: boolean;
  /** secret: expose as this environment variable. */
  env?: string;
  mode?: number;
  uid?: number;
  gid?: number;
}

const types: MountType[] = ['bind', 'cache', 'tmpfs', 'secret', 'ssh'];
const sharings: CacheSharing[] = ['shared', 'private', 'locked'];
const allKeys = [
  'type',
  'from',
  'source',
  'target',
  'readonly',
  'id',
  'sharing',
  'required',
  'size',
  'mode',
  'uid',
  'gid',
  'src',
  'dst',
  'destination',
  'ro',
  'rw',
  'readwrite',
  'env',
];

/** CSV fields as Go's csv reader splits them (double quotes group, `""` is a quote). */
export function csvFields(value: string): string[] {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    if (value[i] === '"') {
      i++;
      for (;;) {
        if (i >= value.length) throw new FrontendProblem(`failed to parse csv mounts: extraneous or missing " in quoted-field: ${value}`, value);
        if (value[i] === '"') {
          if (value[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += value[i++];
      }
      if (i < value.length && value[i] !== ',')
        throw new FrontendProblem(`failed to parse csv mounts: extraneous or missing " in quoted-field: ${value}`, value);
    } else {
      const end = value.indexOf(',', i);
      field = end < 0 ? value.slice(i) : value.slice(i, end);
      i = end < 0 ? value.length : end;
      if (field.includes('"')) throw new FrontendProblem(`failed to parse csv mounts: bare " in non-quoted-field: ${value}`, value);
    }
    fields.push(field);
    if (i >= value.length) break;
    i++; // the comma
  }
  return fields;
}

function parseBool(key: string, v: string): boolean {
  switch (v) {
    case '1':
    case 't':
    case 'T':
    case 'true':
    case 'TRUE':
    case 'True':
      return true;
    case '0':
    case 'f':
    case 'F':
    case 'false':
    case 'FALSE':
    case 'False':
      return false;
  }
  throw new FrontendProblem(`invalid value for ${key}: ${v}`, v);
}

function parseUint(key: string, v: string, radix: number): number {
  const ok = radix === 8 ? /^[0-7]+$/.test(v) : /^\d+$/.test(v);
  const n = ok ? parseInt(v, radix) : NaN;
  if (!ok || n > 0xffffffff) throw new FrontendProblem(`invalid value ${v} for ${key}`, v);
  return n;
}

/** docker's RAMInBytes: "64m", "1g", "512k", "100" (bytes), binary multiples. */
function ramInBytes(v: string): number {
  const m = /^(\d+(?:\.\d+)?) ?([kKmMgGtTpP]?)[iI]?[bB]?$/.exec(v);
  if (!m) throw new FrontendProblem(`invalid value for size: ${v}`, v);
  const mult: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };
  return Math.floor(Number(m[1]) * mult[m[2]!.toLowerCase()]!);
}

/**
 * Parses one --mount value. `expand` expands each value (the builder passes its environment);
 * without it, values containing `$` are kept as written and not checked yet.
 */
export function parseMount(value: string, expand?: (word: string) => string): RunMount {
  const m: RunMount = { type: 'bind', readOnly: true, required: false };
  let roAuto = true;
  const deferred = (v: string) => !expand && v.includes('$');
  for (const field of csvFields(value)) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    if (eq < 0) {
      switch (key) {
        case 'readonly':
        case 'ro':
          m.readOnly = true;
          roAuto = false;
          continue;
        case 'readwrite':
        case 'rw':
          m.readOnly = false;
          roAuto = false;
          continue;
        case 'required':
          if (m.type === 'secret' || m.type === 'ssh') {
            m.required = true;
            continue;
          }
          throw new FrontendProblem(`unexpected key '${key}' for mount type '${m.type}'`, field);
        default:
          throw new FrontendProblem(`invalid field '${field}' must be a key=value pair`, field);
      }
    }
    let v = field.slice(eq + 1);
    if (key === 'from' && v.includes('$') && v.indexOf('$') !== v.length - 1) {
      throw new FrontendProblem(`'from' doesn't support variable expansion, define alias stage instead`, field);
    }
    if (expand) v = expand(v);
    const later = deferred(v);
    switch (key) {
      case 'type': {
        const t = v.toLowerCase() as MountType;
        if (later) break;
        if (!types.includes(t)) throw new FrontendProblem(`unsupported mount type "${v}" (use one of ${types.join(', ')})`, field);
        m.type = t;
        break;
      }
      case 'from':
        m.from = v;
        break;
      case 'source':
      case 'src':
        m.source = v;
        break;
      case 'target':
      case 'dst':
      case 'destination':
        m.target = v;
        break;
      case 'readonly':
      case 'ro':
        if (!later) m.readOnly = parseBool(key, v);
        roAuto = false;
        break;
      case 'readwrite':
      case 'rw':
        if (!later) m.readOnly = !parseBool(key, v);
        roAuto = false;
        break;
      case 'required':
        if (m.type !== 'secret' && m.type !== 'ssh') throw new FrontendProblem(`unexpected key '${key}' for mount type '${m.type}'`, field);
        if (!later) m.required = parseBool(key, v);
        break;
      case 'size':
        if (m.type !== 'tmpfs') throw new FrontendProblem(`unexpected key '${key}' for mount type '${m.type}'`, field);
        if (!later) m.size = ramInBytes(v);
        break;
      case 'id':
        m.id = v;
        break;
      case 'sharing': {
        if (later) break;
        const s = v.toLowerCase() as CacheSharing;
        if (!sharings.includes(s)) throw new FrontendProblem(`unsupported sharing value "${v}" (use one of ${sharings.join(', ')})`, field);
        m.sharing = s;
        break;
      }
      case 'mode':
        if (!later) m.mode = parseUint('mode', v, 8);
        break;
      case 'uid':
        if (!later) m.uid = parseUint('uid', v, 10);
        break;
      case 'gid':
        if (!later) m.gid = parseUint('gid', v, 10);
        break;
      case 'env':
        m.env = v;
        break;
      default:
        throw new FrontendProblem(`unexpected key '${key}' in '${field}' (known keys: ${allKeys.join(', ')})`, field);
    }
  }
  const fileInfo = m.type === 'secret' || m.type === 'ssh' || m.type === 'cache';
  if (!fileInfo) {
    for (const k of ['mode', 'uid', 'gid'] as const) {
      if (m[k] !== undefined) throw new FrontendProblem(`${k} not allowed for "${m.type}" type mounts`, `${k}=`);
    }
  }
  if (roAuto) m.readOnly = !(m.type === 'cache' || m.type === 'tmpfs');
  if (m.type === 'secret') {
    if (m.from) throw new FrontendProblem('secret mount should not have a from', 'from=');
    if (m.sharing) throw new FrontendProblem('secret mount should not define sharing', 'sharing=');
    if (!m.source && !m.target && !m.id) throw new FrontendProblem('invalid secret mount: one of id, source or target is required', value);
    if (m.source && m.id) throw new FrontendProblem("both source and id can't be set", value);
  }
  if (m.sharing && m.type !== 'cache') throw new FrontendProblem(`invalid cache sharing set for ${m.type} mount`, 'sharing=');
  return m;
}
