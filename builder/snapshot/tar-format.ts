/**
 * The tar format as layers use it: ustar headers plus PAX extended records. Written here rather than with
 * tar-stream because layers carry binary xattr values (`SCHILY.xattr.security.capability`) in PAX records,
 * which tar-stream decodes and encodes as UTF-8 text and so corrupts; names that are not UTF-8 keep their
 * bytes here for the same reason.
 */

import { decodeName, encodeName } from './fs-names.js';

export type EntryType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'directory' | 'fifo';

export interface TarHeader {
  name: string;
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch. */
  mtime: number;
  linkname?: string | undefined;
  devmajor?: number | undefined;
  devminor?: number | undefined;
  /** Owner names (optional; layers identify owners by number). */
  uname?: string | undefined;
  gname?: string | undefined;
  /** xattr name → raw value. */
  xattrs?: Map<string, Buffer> | undefined;
}

const BLOCK = 512;
export const END_OF_ARCHIVE = Buffer.alloc(BLOCK * 2);

const typeFlags: Record<EntryType, string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  char: '3',
  block: '4',
  directory: '5',
  fifo: '6',
};

/** A name's bytes into a header field (names are bytes: see fs-names.ts). */
function writeString(buf: Buffer, value: string, offset: number, length: number): void {
  if (value.length === 0) return;
  // ASCII (most names) is written as it is; anything else through its bytes
  if (Buffer.byteLength(value) === value.length) buf.write(value, offset, Math.min(length, value.length), 'latin1');
  else encodeName(value).copy(buf, offset, 0, length);
}

function fitsOctal(value: number, digits: number): boolean {
  return Number.isInteger(value) && value >= 0 && value < 8 ** digits;
}

/** A text field fits ustar when it is ASCII and leaves room for its NUL terminator. */
function fitsText(value: string, length: number): boolean {
  return Buffer.byteLength(value) === value.length && value.length < length;
}

function writeOctal(buf: Buffer, value: number, offset: number, length: number): void {
  buf.write(value.toString(8).padStart(length - 1, '0') + '\0', offset, length, 'ascii');
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

/** Pads a byte count up to the 512-byte block size. */
export function padding(size: number): Buffer {
  const rest = size % BLOCK;
  return rest === 0 ? Buffer.alloc(0) : Buffer.alloc(BLOCK - rest);
}

function ustarBlock(h: TarHeader, name: string, linkname: string, typeflag: string, size: number, prefix = ''): Buffer {
  const buf = Buffer.alloc(BLOCK);
  writeString(buf, name, 0, 100);
  writeOctal(buf, h.mode & 0o7777, 100, 8);
  writeOctal(buf, fitsOctal(h.uid, 7) ? h.uid : 0, 108, 8);
  writeOctal(buf, fitsOctal(h.gid, 7) ? h.gid : 0, 116, 8);
  writeOctal(buf, fitsOctal(size, 11) ? size : 0, 124, 12);
  writeOctal(buf, fitsOctal(h.mtime, 11) ? h.mtime : 0, 136, 12);
  buf.write(typeflag, 156, 1, 'ascii');
  writeString(buf, linkname, 157, 100);
  buf.write('ustar\0' + '00', 257, 8, 'ascii');
  if (h.uname && fitsText(h.uname, 32)) writeString(buf, h.uname, 265, 32);
  if (h.gname && fitsText(h.gname, 32)) writeString(buf, h.gname, 297, 32);
  writeOctal(buf, h.devmajor ?? 0, 329, 8);
  writeOctal(buf, h.devminor ?? 0, 337, 8);
  writeString(buf, prefix, 345, 155);
  buf.fill(' ', 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += buf[i]!;
  buf.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return buf;
}

/** Splits a name into ustar prefix + name when it fits, else undefined. */
function splitUstarName(name: string): { prefix: string; name: string } | undefined {
  if (Buffer.byteLength(name) !== name.length) return undefined; // non-ASCII goes to PAX
  if (name.length <= 100) return { prefix: '', name };
  for (let i = name.indexOf('/'); i !== -1; i = name.indexOf('/', i + 1)) {
    if (i <= 155 && name.length - i - 1 <= 100 && name.length - i - 1 > 0) return { prefix: name.slice(0, i), name: name.slice(i + 1) };
  }
  return undefined;
}

/**
 * The header blocks of one entry: a PAX header when something does not fit ustar, then the ustar header.
 * As Go's archive/tar (docker, BuildKit) does, every field that does not fit goes into a PAX record: names
 * and link targets longer than ustar allows or not ASCII, uid/gid ≥ 8^7, size ≥ 8 GiB, mtime before 1970
 * or from 2242 on, owner names not ASCII or longer than 31 bytes.
 */
export function encodeHeader(h: TarHeader): Buffer {
  const records: Buffer[] = [];
  const split = splitUstarName(h.name);
  const linkname = h.linkname ?? '';
  if (!split) records.push(paxRecord('path', encodeName(h.name)));
  const linkFits = Buffer.byteLength(linkname) === linkname.length && linkname.length <= 100;
  if (!linkFits) records.push(paxRecord('linkpath', encodeName(linkname)));
  if (!fitsOctal(h.uid, 7)) records.push(paxRecord('uid', Buffer.from(String(h.uid))));
  if (!fitsOctal(h.gid, 7)) records.push(paxRecord('gid', Buffer.from(String(h.gid))));
  if (!fitsOctal(h.size, 11)) records.push(paxRecord('size', Buffer.from(String(h.size))));
  if (!fitsOctal(h.mtime, 11)) records.push(paxRecord('mtime', Buffer.from(String(h.mtime))));
  if (h.uname && !fitsText(h.uname, 32)) records.push(paxRecord('uname', Buffer.from(h.uname)));
  if (h.gname && !fitsText(h.gname, 32)) records.push(paxRecord('gname', Buffer.from(h.gname)));
  if (h.xattrs) {
    for (const key of [...h.xattrs.keys()].sort()) records.push(paxRecord(`SCHILY.xattr.${key}`, h.xattrs.get(key)!));
  }
  const typeflag = typeFlags[h.type];
  const main = ustarBlock(h, split?.name ?? h.name.slice(0, 100), linkFits ? linkname : linkname.slice(0, 100), typeflag, h.size, split?.prefix ?? '');
  if (records.length === 0) return main;
  const body = Buffer.concat(records);
  const paxName = `PaxHeaders.0/${(split?.name ?? h.name).split('/').filter(Boolean).pop() ?? 'entry'}`.slice(0, 100);
  const pax = ustarBlock(
    { ...h, uid: 0, gid: 0, mode: 0o644, mtime: fitsOctal(h.mtime, 11) ? h.mtime : 0, linkname: undefined, uname: undefined, gname: undefined },
    paxName,
    '',
    'x',
    body.length,
  );
  return Buffer.concat([pax, body, padding(body.length), main]);
}

// ---------------------------------------------------------------------------------------------------
// Reading

function readString(buf: Buffer, offset: number, length: number): string {
  const slice = buf.subarray(offset, offset + length);
  const end = slice.indexOf(0);
  return decodeName(slice.subarray(0, end === -1 ? length : end));
}

function readNumber(buf: Buffer, offset: number, length: number): number {
  const slice = buf.subarray(offset, offset + length);
  if ((slice[0] ?? 0) & 0x80) {
    // GNU base-256: big-endian two's complement with the high bit as the marker
    let value = 0;
    for (let i = 1; i < slice.length; i++) value = value * 256 + slice.readUInt8(i);
    return value;
  }
  const text = slice
    .toString('ascii')
    .replace(/[\0 ].*$/s, '')
    .trim();
  return text ? parseInt(text, 8) : 0;
}

function parsePax(body: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let pos = 0;
  while (pos < body.length) {
    const space = body.indexOf(0x20, pos);
    if (space === -1) break;
    const len = parseInt(body.subarray(pos, space).toString('ascii'), 10);
    if (!len || pos + len > body.length) break;
    const record = body.subarray(space + 1, pos + len - 1); // drop the trailing newline
    const eq = record.indexOf(0x3d);
    if (eq !== -1) out.set(record.subarray(0, eq).toString('utf8'), Buffer.from(record.subarray(eq + 1)));
    pos += len;
  }
  return out;
}

/** Pulls exact byte counts out of an async stream of chunks. */
class ByteReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private done = false;
  constructor(private readonly source: AsyncIterator<Buffer>) {}

  private async fill(n: number): Promise<boolean> {
    while (this.buffered < n && !this.done) {
      const next = await this.source.next();
      if (next.done) this.done = true;
      else if (next.value.length) {
        this.chunks.push(next.value);
        this.buffered += next.value.length;
      }
    }
    return this.buffered >= n;
  }

  /** Exactly n bytes, or undefined at the end of the stream. */
  async read(n: number): Promise<Buffer | undefined> {
    if (!(await this.fill(n))) return undefined;
    const first = this.chunks[0];
    const all = first !== undefined && this.chunks.length === 1 ? first : Buffer.concat(this.chunks);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.buffered = rest.length;
    return out;
  }

  /** n bytes as a sequence of chunks (never concatenated: bodies can be large). */
  async *stream(n: number, progress: { left: number } = { left: n }): AsyncGenerator<Buffer> {
    progress.left = n;
    while (progress.left > 0) {
      const left = progress.left;
      if (this.buffered === 0 && !(await this.fill(1))) throw new Error('tar stream ended inside an entry');
      const chunk = this.chunks[0];
      if (chunk === undefined) throw new Error('tar stream ended inside an entry'); // fill(1) succeeded, so not reached
      if (chunk.length <= left) {
        this.chunks.shift();
        this.buffered -= chunk.length;
        progress.left -= chunk.length;
        yield chunk;
      } else {
        this.chunks[0] = chunk.subarray(left);
        this.buffered -= left;
        progress.left = 0;
        yield chunk.subarray(0, left);
      }
    }
  }

  async skip(n: number): Promise<void> {
    for await (const _ of this.stream(n)) void _;
  }

  /** Reads to the end of the source (so a digest over the stream covers every byte). */
  async drain(): Promise<void> {
    this.chunks = [];
    this.buffered = 0;
    while (!this.done) {
      const next = await this.source.next();
      if (next.done) this.done = true;
    }
  }
}

export interface TarEntry {
  header: TarHeader;
  /** The entry's content; must be consumed (or left alone, then it is skipped) before the next entry. */
  body: AsyncGenerator<Buffer>;
}

/** Entries of a tar stream; PAX and GNU long-name headers are folded into the entry they describe. */
export async function* readTar(source: AsyncIterable<Buffer>): AsyncGenerator<TarEntry> {
  const reader = new ByteReader(source[Symbol.asyncIterator]());
  let pax = new Map<string, Buffer>();
  const globalPax = new Map<string, Buffer>();
  let longName: string | undefined;
  let longLink: string | undefined;
  for (;;) {
    const block = await reader.read(BLOCK);
    if (!block || block.every((b) => b === 0)) break;
    const stored = readNumber(block, 148, 8);
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : block.readUInt8(i);
    if (sum !== stored) throw new Error('tar header checksum mismatch: the layer is not a valid tar archive');
    const flag = String.fromCharCode(block[156] || 0x30);
    let size = readNumber(block, 124, 12);
    const merged = new Map([...globalPax, ...pax]);
    if (merged.has('size')) size = Number(merged.get('size')!.toString());
    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      const body = (await reader.read(size)) ?? Buffer.alloc(0);
      await reader.skip(padding(size).length);
      if (flag === 'x') pax = new Map([...pax, ...parsePax(body)]);
      else if (flag === 'g') for (const [k, v] of parsePax(body)) globalPax.set(k, v);
      else if (flag === 'L') longName = readString(body, 0, body.length);
      else longLink = readString(body, 0, body.length);
      continue;
    }
    const magic = block.subarray(257, 263).toString('ascii');
    let name = readString(block, 0, 100);
    const prefix = magic.startsWith('ustar') ? readString(block, 345, 155) : '';
    if (prefix && magic === 'ustar\0') name = `${prefix}/${name}`;
    if (longName !== undefined) name = longName;
    if (merged.has('path')) name = decodeName(merged.get('path')!);
    let linkname = readString(block, 157, 100);
    if (longLink !== undefined) linkname = longLink;
    if (merged.has('linkpath')) linkname = decodeName(merged.get('linkpath')!);
    const num = (key: string, fallback: number) => (merged.has(key) ? Math.floor(Number(merged.get(key)!.toString())) : fallback);
    const text = (key: string, offset: number) =>
      merged.has(key) ? merged.get(key)!.toString('utf8') : magic.startsWith('ustar') ? readString(block, offset, 32) : '';
    const uname = text('uname', 265);
    const gname = text('gname', 297);
    let type: EntryType | undefined;
    switch (flag) {
      case '0':
      case '7':
        type = name.endsWith('/') ? 'directory' : 'file';
        break;
      case '1':
        type = 'hardlink';
        break;
      case '2':
        type = 'symlink';
        break;
      case '3':
        type = 'char';
        break;
      case '4':
        type = 'block';
        break;
      case '5':
        type = 'directory';
        break;
      case '6':
        type = 'fifo';
        break;
    }
    const xattrs = new Map<string, Buffer>();
    for (const [k, v] of merged) {
      if (k.startsWith('SCHILY.xattr.')) xattrs.set(k.slice('SCHILY.xattr.'.length), v);
      else if (k.startsWith('LIBARCHIVE.xattr.')) xattrs.set(decodeURIComponent(k.slice('LIBARCHIVE.xattr.'.length)), Buffer.from(v.toString(), 'base64'));
    }
    pax = new Map();
    longName = longLink = undefined;
    const bodySize = type === 'file' ? size : flag === '1' || flag === '2' || flag === '3' || flag === '4' || flag === '5' || flag === '6' ? 0 : size;
    if (!type) {
      // unknown entry kinds (GNU sparse, volume labels…) carry no file we can reproduce
      await reader.skip(size + padding(size).length);
      continue;
    }
    const header: TarHeader = {
      name,
      type,
      mode: readNumber(block, 100, 8),
      uid: num('uid', readNumber(block, 108, 8)),
      gid: num('gid', readNumber(block, 116, 8)),
      size: bodySize,
      mtime: num('mtime', readNumber(block, 136, 12)),
      linkname: linkname || undefined,
      devmajor: readNumber(block, 329, 8),
      devminor: readNumber(block, 337, 8),
      ...(uname ? { uname } : {}),
      ...(gname ? { gname } : {}),
      xattrs: xattrs.size ? xattrs : undefined,
    };
    const progress = { left: bodySize };
    yield { header, body: reader.stream(bodySize, progress) };
    // whatever the consumer did not read (or abandoned half-way) is skipped
    await reader.skip(progress.left + padding(bodySize).length);
  }
  await reader.drain();
}
