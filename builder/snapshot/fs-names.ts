import { isUtf8 } from 'node:buffer';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs, readdirSync, readlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

/**
 * File names are bytes (Linux, tar and Go — docker, BuildKit — all treat them so); JavaScript strings
 * are UTF-16. A name is carried as a string that decodes valid UTF-8 as text and each byte that is not
 * part of valid UTF-8 as a lone surrogate U+DC80–U+DCFF (Python's "surrogateescape"): UTF-8 names — the
 * Dockerfile's, nearly everyone's — look as usual, and every name round-trips to its exact bytes.
 * Strings that may hold such names go to node:fs through `fsPath` and to tar headers through `encodeName`.
 */

const ESCAPED = /[\uDC80-\uDCFF]/;

/** The name for these bytes (valid UTF-8 decoded, other bytes escaped). */
export function decodeName(bytes: Buffer): string {
  if (isUtf8(bytes)) return bytes.toString('utf8');
  let out = '';
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    const len = b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    if (len === 1) {
      out += String.fromCharCode(b);
      i++;
      continue;
    }
    if (len > 0 && i + len <= bytes.length && isUtf8(bytes.subarray(i, i + len))) {
      out += bytes.subarray(i, i + len).toString('utf8');
      i += len;
      continue;
    }
    out += String.fromCharCode(0xdc00 + b);
    i++;
  }
  return out;
}

/** The bytes of a name made by `decodeName` (or of any ordinary string: its UTF-8). */
export function encodeName(name: string): Buffer {
  if (!ESCAPED.test(name)) return Buffer.from(name, 'utf8');
  const parts: Buffer[] = [];
  let run = '';
  for (const ch of name) {
    const code = ch.charCodeAt(0);
    if (ch.length === 1 && code >= 0xdc80 && code <= 0xdcff) {
      if (run) parts.push(Buffer.from(run, 'utf8'));
      run = '';
      parts.push(Buffer.from([code - 0xdc00]));
    } else run += ch;
  }
  if (run) parts.push(Buffer.from(run, 'utf8'));
  return Buffer.concat(parts);
}

/** A path for node:fs: the string itself when it holds no escaped byte, else its bytes. */
export function fsPath(path: string): string | Buffer {
  return ESCAPED.test(path) ? encodeName(path) : path;
}

/** The names in a directory, bytes kept. */
export async function readdirNames(dir: string): Promise<string[]> {
  return (await fs.readdir(fsPath(dir), { encoding: 'buffer' })).map(decodeName);
}

export function readdirNamesSync(dir: string): string[] {
  return readdirSync(fsPath(dir), { encoding: 'buffer' }).map(decodeName);
}

/** A symlink's target, bytes kept. */
export async function readlinkName(path: string): Promise<string> {
  return decodeName(await fs.readlink(fsPath(path), { encoding: 'buffer' }));
}

export function readlinkNameSync(path: string): string {
  return decodeName(readlinkSync(fsPath(path), { encoding: 'buffer' }));
}

/** Byte order of two names (tar, checksums and walks sort by it, as Go's sort.Strings does). */
export function byteOrder(a: string, b: string): number {
  return Buffer.compare(encodeName(a), encodeName(b));
}

const run = promisify(execFile);

/**
 * `mknod` for any name: the tool takes its path as an argument, which cannot carry bytes that are not
 * UTF-8, so the node is made under a plain name in the same directory and renamed into place.
 */
export async function mknodName(path: string, type: 'c' | 'b' | 'p', mode: number, major = 0, minor = 0): Promise<void> {
  const plain = !ESCAPED.test(path);
  const at = plain ? path : join(dirname(path), `.tsbuild-mknod-${process.pid}-${randomBytes(4).toString('hex')}`);
  await run('mknod', ['-m', (mode & 0o7777).toString(8), at, type, ...(type === 'p' ? [] : [String(major), String(minor)])]);
  if (!plain) await fs.rename(at, fsPath(path));
}
