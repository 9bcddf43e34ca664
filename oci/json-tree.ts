import { Buffer, isUtf8 } from 'node:buffer';

/**
 * A JSON document as written: every object key in order (duplicates kept), numbers as their literal
 * text. `JSON.parse` loses both, and both decide what Go's encoding/json reads (a key that differs in
 * case still fills a field; `1.5` or `1e3` fails an integer field that `JSON.parse` would call 1.5 or 1000).
 */
export type JsonNode = JsonObject | JsonArray | JsonString | JsonNumber | JsonLiteral;
export interface JsonObject {
  readonly type: 'object';
  /** Keys after unescaping, in document order; `values[i]` belongs to `keys[i]`. */
  readonly keys: string[];
  readonly values: JsonNode[];
}
export interface JsonArray {
  readonly type: 'array';
  readonly items: JsonNode[];
}
export interface JsonString {
  readonly type: 'string';
  readonly value: string;
}
export interface JsonNumber {
  readonly type: 'number';
  /** The literal exactly as written, e.g. `12`, `-0`, `1.5e3`. */
  readonly raw: string;
}
export interface JsonLiteral {
  readonly type: 'true' | 'false' | 'null';
}

/**
 * Not JSON (RFC 8259), or JSON that Go and JavaScript would not read alike; `offset` counts bytes for
 * invalid UTF-8, characters otherwise.
 */
export class JsonSyntaxError extends Error {
  constructor(
    readonly reason: string,
    readonly offset: number,
    unit = 'character',
  ) {
    super(`${reason} at ${unit} ${offset}`);
    this.name = 'JsonSyntaxError';
  }
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** The field names of manifests, indexes, descriptors and platforms, by their first character code. */
const KNOWN_KEYS: (string[] | undefined)[] = (() => {
  const table: (string[] | undefined)[] = [];
  const keys = [
    'schemaVersion',
    'mediaType',
    'artifactType',
    'config',
    'layers',
    'manifests',
    'subject',
    'annotations',
    'digest',
    'size',
    'urls',
    'data',
    'platform',
    'architecture',
    'os',
    'os.version',
    'os.features',
    'variant',
    'features',
  ];
  // Longest first, so "os.version" is not taken for "os".
  for (const key of keys.sort((a, b) => b.length - a.length)) (table[key.charCodeAt(0)] ??= []).push(key);
  return table;
})();

const TRUE: JsonLiteral = { type: 'true' };
const FALSE: JsonLiteral = { type: 'false' };
const NULL: JsonLiteral = { type: 'null' };

/**
 * Far beyond any image document, far below what a recursive parser can take (Go allows 10000; a
 * stricter limit only refuses more).
 */
const MAX_DEPTH = 512;

/** Byte offset of the first byte that does not start a well-formed UTF-8 sequence (only called on failure). */
function firstInvalidUtf8(buf: Uint8Array): number {
  for (let i = 0; i < buf.length; ) {
    const b = buf[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    const n = b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    if (n === 0 || i + n > buf.length || !isUtf8(buf.subarray(i, i + n))) return i;
    i += n;
  }
  return buf.length;
}

const HEX: Int8Array = (() => {
  const t = new Int8Array(128).fill(-1);
  for (let i = 0; i < 10; i++) t[0x30 + i] = i;
  for (let i = 0; i < 6; i++) {
    t[0x41 + i] = 10 + i;
    t[0x61 + i] = 10 + i;
  }
  return t;
})();

class Parser {
  pos = 0;
  constructor(private readonly text: string) {}

  fail(reason: string, at = this.pos): never {
    throw new JsonSyntaxError(reason, at);
  }

  unexpected(): never {
    if (this.pos >= this.text.length) this.fail('unexpected end of JSON');
    const b = this.text.charCodeAt(this.pos);
    this.fail(
      b > 0x20 && b < 0x7f ? `unexpected character '${String.fromCharCode(b)}'` : `unexpected character U+${b.toString(16).toUpperCase().padStart(4, '0')}`,
    );
  }

  skipSpace(): void {
    const text = this.text;
    let i = this.pos;
    // JSON's whitespace only: a BOM or a non-breaking space is refused, as Go does.
    for (let b = text.charCodeAt(i); b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09; b = text.charCodeAt(++i));
    this.pos = i;
  }

  value(depth: number): JsonNode {
    this.skipSpace();
    const b = this.text.charCodeAt(this.pos);
    switch (b) {
      case 0x7b: // {
        return this.object(depth + 1);
      case 0x5b: // [
        return this.array(depth + 1);
      case 0x22: // "
        return { type: 'string', value: this.string() };
      case 0x74: // t
        return this.literal('true', TRUE);
      case 0x66: // f
        return this.literal('false', FALSE);
      case 0x6e: // n
        return this.literal('null', NULL);
      default:
        if (b === 0x2d || (b >= 0x30 && b <= 0x39)) return this.number();
        return this.unexpected();
    }
  }

  literal(word: string, node: JsonLiteral): JsonLiteral {
    for (let k = 0; k < word.length; k++) {
      if (this.text.charCodeAt(this.pos + k) !== word.charCodeAt(k)) {
        this.pos += k;
        this.unexpected();
      }
    }
    this.pos += word.length;
    return node;
  }

  object(depth: number): JsonObject {
    if (depth > MAX_DEPTH) this.fail(`nested deeper than ${MAX_DEPTH} levels`);
    this.pos++;
    const keys: string[] = [];
    const values: JsonNode[] = [];
    this.skipSpace();
    if (this.text.charCodeAt(this.pos) === 0x7d) {
      this.pos++;
      return { type: 'object', keys, values };
    }
    for (;;) {
      this.skipSpace();
      if (this.text.charCodeAt(this.pos) !== 0x22) this.unexpected();
      keys.push(this.knownKey() ?? this.string());
      this.skipSpace();
      if (this.text.charCodeAt(this.pos) !== 0x3a) this.unexpected();
      this.pos++;
      values.push(this.value(depth));
      this.skipSpace();
      const b = this.text.charCodeAt(this.pos);
      this.pos++;
      if (b === 0x2c) continue;
      if (b === 0x7d) return { type: 'object', keys, values };
      this.pos--;
      this.unexpected();
    }
  }

  array(depth: number): JsonArray {
    if (depth > MAX_DEPTH) this.fail(`nested deeper than ${MAX_DEPTH} levels`);
    this.pos++;
    const items: JsonNode[] = [];
    this.skipSpace();
    if (this.text.charCodeAt(this.pos) === 0x5d) {
      this.pos++;
      return { type: 'array', items };
    }
    for (;;) {
      items.push(this.value(depth));
      this.skipSpace();
      const b = this.text.charCodeAt(this.pos);
      this.pos++;
      if (b === 0x2c) continue;
      if (b === 0x5d) return { type: 'array', items };
      this.pos--;
      this.unexpected();
    }
  }

  /**
   * One of the keys image documents are made of, returned as the shared constant (no new string, its
   * hash already computed), when the text at the opening quote is exactly that key; else undefined.
   */
  knownKey(): string | undefined {
    const text = this.text;
    const start = this.pos + 1;
    const candidates = KNOWN_KEYS[text.charCodeAt(start)];
    if (candidates === undefined) return undefined;
    for (const key of candidates) {
      if (text.charCodeAt(start + key.length) === 0x22 && text.startsWith(key, start)) {
        this.pos = start + key.length + 1;
        return key;
      }
    }
    return undefined;
  }

  /** A string token starting at the opening quote. */
  string(): string {
    const text = this.text;
    const start = ++this.pos;
    let i = start;
    for (;;) {
      const b = text.charCodeAt(i);
      if (b === 0x22) break;
      if (b === 0x5c) return this.escapedString(start, i);
      if (b < 0x20) this.fail('control character in string', i);
      if (Number.isNaN(b)) this.fail('unterminated string', start - 1); // past the end
      i++;
    }
    this.pos = i + 1;
    return text.slice(start, i);
  }

  escapedString(start: number, firstEscape: number): string {
    const text = this.text;
    let out = text.slice(start, firstEscape);
    let i = firstEscape;
    let run = i;
    for (;;) {
      const b = text.charCodeAt(i);
      if (b === 0x22) break;
      if (Number.isNaN(b)) this.fail('unterminated string', start - 1);
      if (b < 0x20) this.fail('control character in string', i);
      if (b !== 0x5c) {
        i++;
        continue;
      }
      if (run < i) out += text.slice(run, i);
      const e = text.charCodeAt(i + 1);
      switch (e) {
        case 0x22:
          out += '"';
          break;
        case 0x5c:
          out += '\\';
          break;
        case 0x2f:
          out += '/';
          break;
        case 0x62:
          out += '\b';
          break;
        case 0x66:
          out += '\f';
          break;
        case 0x6e:
          out += '\n';
          break;
        case 0x72:
          out += '\r';
          break;
        case 0x74:
          out += '\t';
          break;
        case 0x75: {
          const unit = this.hex4(i + 2);
          if (unit >= 0xd800 && unit <= 0xdbff && text.charCodeAt(i + 6) === 0x5c && text.charCodeAt(i + 7) === 0x75) {
            const low = this.hex4(i + 8);
            if (low >= 0xdc00 && low <= 0xdfff) {
              out += String.fromCharCode(unit, low);
              i += 12;
              run = i;
              continue;
            }
          }
          // Go turns a lone surrogate into U+FFFD, JavaScript keeps it: the two would read different text.
          if (unit >= 0xd800 && unit <= 0xdfff) this.fail(`lone surrogate \\u${unit.toString(16).padStart(4, '0')} in string`, i);
          out += String.fromCharCode(unit);
          i += 6;
          run = i;
          continue;
        }
        default:
          this.fail('invalid escape in string', i);
      }
      i += 2;
      run = i;
    }
    if (run < i) out += text.slice(run, i);
    this.pos = i + 1;
    return out;
  }

  hex4(at: number): number {
    let v = 0;
    for (let k = 0; k < 4; k++) {
      const h = HEX[this.text.charCodeAt(at + k)] ?? -1;
      if (h < 0) this.fail('invalid \\u escape in string', at - 2);
      v = (v << 4) | h;
    }
    return v;
  }

  /** RFC 8259's number grammar exactly (Go's too): no `+`, no leading zeros, digits on both sides of `.`. */
  number(): JsonNumber {
    const text = this.text;
    const start = this.pos;
    let i = start;
    const digits = () => {
      const from = i;
      for (let b = text.charCodeAt(i); b >= 0x30 && b <= 0x39; b = text.charCodeAt(++i));
      if (i === from) {
        this.pos = i;
        this.unexpected();
      }
    };
    if (text.charCodeAt(i) === 0x2d) i++;
    if (text.charCodeAt(i) === 0x30) i++;
    else digits();
    if (text.charCodeAt(i) === 0x2e) {
      i++;
      digits();
    }
    const e = text.charCodeAt(i);
    if (e === 0x65 || e === 0x45) {
      i++;
      const sign = text.charCodeAt(i);
      if (sign === 0x2b || sign === 0x2d) i++;
      digits();
    }
    this.pos = i;
    return { type: 'number', raw: text.slice(start, i) };
  }
}

/**
 * Parses one JSON value (RFC 8259) into a {@link JsonNode} tree. Refuses what Go's encoding/json
 * refuses (trailing data, a byte-order mark, non-JSON whitespace, malformed numbers and escapes) and
 * what Go and JavaScript would decode to different text: invalid UTF-8 (Go substitutes U+FFFD per
 * byte, a WHATWG decoder per sequence) and lone surrogate escapes (Go: U+FFFD, JavaScript: kept).
 */
export function parseJsonTree(input: Uint8Array | string): JsonNode {
  let text: string;
  if (typeof input === 'string') {
    const lone = input.search(LONE_SURROGATE);
    if (lone >= 0) throw new JsonSyntaxError('lone surrogate', lone);
    text = input;
  } else {
    const buf = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    if (!isUtf8(buf)) throw new JsonSyntaxError('invalid UTF-8', firstInvalidUtf8(buf), 'byte');
    // One native decode; string slices are then cheap (V8 shares the characters).
    text = buf.toString('utf8');
  }
  const parser = new Parser(text);
  const node = parser.value(0);
  parser.skipSpace();
  if (parser.pos < text.length) parser.unexpected();
  return node;
}

/** The JSON type of a node, as messages name it. */
export function jsonTypeName(node: JsonNode): string {
  return node.type === 'true' || node.type === 'false' ? 'boolean' : node.type;
}
