import { jsonTypeName, type JsonArray, type JsonNode } from './json-tree.js';

/**
 * Reading a {@link JsonNode} tree the way Go's encoding/json fills a struct, refusing every place where
 * the two could read different values. Go's rules (encoding/json, decode.go): an object key fills the
 * field whose name equals it, else the field whose name equals it case-insensitively (Unicode simple
 * folding, so `ſ` is `s` and the Kelvin sign is `k`); of several keys for one field the last wins;
 * unknown keys are ignored; `null` leaves the field's zero value; an integer field takes only an
 * integer literal in range; a value of the wrong JSON type is an error.
 */

/** A value that Go clients would decode differently, or refuse; `field` is a path like `layers[2].size`. */
export class JsonFieldError extends Error {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(field ? `${field}: ${reason}` : reason);
    this.name = 'JsonFieldError';
  }
}

// The only non-ASCII code points whose Go fold (unicode.ToUpper(unicode.ToLower(r)) since Go 1.21;
// bytes.EqualFold's orbits before) lands on an ASCII letter.
const NON_ASCII_FOLDS = new Map<number, string>([
  [0x0130, 'I'], // İ: simple lowercase is i (Go ≥ 1.21)
  [0x0131, 'I'], // ı: simple uppercase is I (Go ≥ 1.21)
  [0x017f, 'S'], // ſ long s
  [0x212a, 'K'], // Kelvin sign
]);

/** A key folded as encoding/json compares it to field names (exact only for characters that can meet ASCII names). */
export function goFoldKey(key: string): string {
  let out = '';
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c < 0x80) out += c >= 0x61 && c <= 0x7a ? String.fromCharCode(c - 0x20) : key[i];
    else out += NON_ASCII_FOLDS.get(c) ?? key[i];
  }
  return out;
}

/** The JSON names of a Go struct's fields, prepared for matching keys as Go does. */
export class GoStruct {
  private readonly exact: ReadonlySet<string>;
  private readonly folded: ReadonlyMap<string, string>;
  constructor(readonly names: readonly string[]) {
    this.exact = new Set(names);
    this.folded = new Map(names.map((n) => [goFoldKey(n), n]));
  }
  has(key: string): boolean {
    return this.exact.has(key);
  }
  /** The field a key not spelled like any field would still fill in Go, if any. */
  foldedField(key: string): string | undefined {
    return this.folded.get(goFoldKey(key));
  }
}

/** `path.key`, or `path["key"]` for keys that are not plain names. */
export function childPath(path: string, key: string): string {
  if (/^[A-Za-z_$][\w$]*$/.test(key)) return path ? `${path}.${key}` : key;
  return `${path}[${JSON.stringify(key)}]`;
}

export function fail(path: string, reason: string): never {
  throw new JsonFieldError(path, reason);
}

function wrongType(path: string, node: JsonNode, wanted: string): never {
  fail(
    path,
    `must be ${wanted}, not ${jsonTypeName(node) === 'array' ? 'an array' : jsonTypeName(node) === 'object' ? 'an object' : `a ${jsonTypeName(node)}`}`,
  );
}

/**
 * The values of an object's known fields, refusing a key that Go would put into a field although it is
 * spelled differently (`MediaType`, `ſize`), and a field given twice (Go keeps the last, `JSON.parse`
 * too, but other readers keep the first). Keys of no field are ignored, as Go does. `null` → undefined.
 */
export function readStruct(node: JsonNode, path: string, struct: GoStruct, what: string): Map<string, JsonNode> | undefined {
  if (node.type === 'null') return undefined;
  if (node.type !== 'object') wrongType(path, node, `${what} (an object)`);
  const fields = new Map<string, JsonNode>();
  const { keys, values } = node;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    if (struct.has(key)) {
      if (fields.has(key)) fail(childPath(path, key), 'given twice (Go clients take the last, others the first)');
      fields.set(key, values[i]!);
      continue;
    }
    const field = struct.foldedField(key);
    if (field !== undefined) {
      fail(childPath(path, key), `Go clients read this key as "${field}" (they match keys case-insensitively); spell it "${field}"`);
    }
  }
  return fields;
}

/** A string field; `null` → undefined (Go leaves ""). */
export function readString(node: JsonNode | undefined, path: string): string | undefined {
  if (node === undefined || node.type === 'null') return undefined;
  if (node.type !== 'string') wrongType(path, node, 'a string');
  return node.value;
}

/** An array field's items; `null` → undefined (Go: a nil slice). */
export function readArray(node: JsonNode | undefined, path: string): JsonNode[] | undefined {
  if (node === undefined || node.type === 'null') return undefined;
  if (node.type !== 'array') wrongType(path, node, 'an array');
  return (node as JsonArray).items;
}

/** A `[]string` field; a `null` item is refused (Go would read "", JavaScript null). */
export function readStringList(node: JsonNode | undefined, path: string): string[] | undefined {
  const items = readArray(node, path);
  if (items === undefined) return undefined;
  const out = new Array<string>(items.length);
  for (let i = 0; i < items.length; i++) {
    const item = items[i]!;
    if (item.type !== 'string') wrongType(`${path}[${i}]`, item, 'a string');
    out[i] = item.value;
  }
  return out;
}

/**
 * A `map[string]string` field. Map keys match exactly in Go (no folding), so `a` and `A` are two
 * entries; the same key twice is refused, and so is a `null` value (Go would read "").
 */
export function readStringMap(node: JsonNode | undefined, path: string): Record<string, string> | undefined {
  if (node === undefined || node.type === 'null') return undefined;
  if (node.type !== 'object') wrongType(path, node, 'an object of strings');
  const out: Record<string, string> = {};
  const { keys, values } = node;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    const value = values[i]!;
    if (Object.hasOwn(out, key)) fail(childPath(path, key), 'given twice (Go clients take the last, others the first)');
    if (value.type !== 'string') wrongType(childPath(path, key), value, 'a string');
    // Assigning `__proto__` would set the prototype instead of adding the key.
    if (key === '__proto__') Object.defineProperty(out, key, { value: value.value, enumerable: true, writable: true, configurable: true });
    else out[key] = value.value;
  }
  return out;
}

const INT64_MAX = 9223372036854775807n;
const INT64_MIN = -9223372036854775808n;

/**
 * An integer field (Go `int64`, or `int`, which is 64 bits on the platforms registries run on).
 * Go takes only an integer literal (strconv.ParseInt): `1.5`, `1.0` and `1e3` fail to decode, as does
 * anything outside int64. Numbers beyond 2^53 are refused too: JavaScript cannot hold them exactly.
 */
export function readInteger(node: JsonNode | undefined, path: string): number | undefined {
  if (node === undefined || node.type === 'null') return undefined;
  if (node.type !== 'number') wrongType(path, node, 'an integer');
  const raw = node.raw;
  if (!/^-?(?:0|[1-9][0-9]*)$/.test(raw)) fail(path, `${raw} is not an integer literal (Go clients refuse it for an integer field)`);
  const value = Number(raw);
  if (Number.isSafeInteger(value)) return value;
  const big = BigInt(raw);
  if (big > INT64_MAX || big < INT64_MIN) fail(path, `${raw} is out of range for a 64-bit integer (Go clients refuse it)`);
  return fail(path, `${raw} is larger than ${Number.MAX_SAFE_INTEGER}, the largest integer tsbuild reads exactly`);
}
