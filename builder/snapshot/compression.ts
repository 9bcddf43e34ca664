import { spawn } from 'node:child_process';
import { Duplex, PassThrough, Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { ParallelGzip } from './parallel-gzip.js';
import type { LayerCompression } from '../../oci/index.js';

/** What a tar may be compressed with: a layer's compressions, and bzip2 and xz, which ADD also unpacks. */
export type ArchiveCompression = LayerCompression | 'bzip2' | 'xz';
export type DecompressMode = ArchiveCompression | 'auto';

const packageOf: Record<string, string> = { zstd: 'zstd', bzip2: 'bzip2', xz: 'xz-utils' };

/** A transform running an external filter (zstd, bzip2, xz: Node 20's zlib has none of them). */
function processFilter(cmd: string, args: string[]): Duplex {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const output = new PassThrough();
  child.stdout.pipe(output, { end: false });
  let exited: number | null | undefined;
  let stdoutEnded = false;
  const finish = () => {
    if (exited === undefined || !stdoutEnded) return;
    if (exited === 0) output.end();
    else output.destroy(new Error(`${cmd} failed (exit ${exited}): ${stderr.trim().split('\n')[0] ?? ''}`));
  };
  child.stdout.on('end', () => {
    stdoutEnded = true;
    finish();
  });
  child.on('close', (code) => {
    exited = code;
    stdoutEnded = true;
    finish();
  });
  child.on('error', (e) => output.destroy(new Error(`cannot run ${cmd}: ${e.message} (install the "${packageOf[cmd] ?? cmd}" package: scripts/setup.sh)`)));
  child.stdin.on('error', () => undefined);
  const duplex = Duplex.from({ writable: child.stdin, readable: output });
  duplex.on('close', () => {
    if (exited === undefined) child.kill('SIGKILL');
  });
  return duplex;
}

const GZIP_MAGIC = [0x1f, 0x8b];
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];
const BZIP2_MAGIC = [0x42, 0x5a, 0x68]; // "BZh"
const XZ_MAGIC = [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00];

/** The compression a blob's first bytes announce (docker's DetectCompression), else `none`. */
export function detectCompression(head: Buffer): ArchiveCompression {
  if (startsWith(head, GZIP_MAGIC)) return 'gzip';
  if (startsWith(head, ZSTD_MAGIC)) return 'zstd';
  if (startsWith(head, XZ_MAGIC)) return 'xz';
  if (startsWith(head, BZIP2_MAGIC)) return 'bzip2';
  return 'none';
}

function startsWith(buf: Buffer, magic: number[]): boolean {
  return magic.every((b, i) => buf[i] === b);
}

/**
 * The uncompressed bytes of a layer blob or an archive; `auto` recognises gzip, zstd, bzip2 and xz by their
 * magic bytes (gzip in-process, the others through their Debian CLIs).
 */
export async function decompress(source: Readable, mode: DecompressMode = 'auto'): Promise<Readable> {
  let compression = mode;
  let input: Readable = source;
  if (mode === 'auto') {
    const iterator = source[Symbol.asyncIterator]();
    const chunks: Buffer[] = [];
    let size = 0;
    let ended = false;
    while (size < XZ_MAGIC.length) {
      const next = await iterator.next();
      if (next.done) {
        ended = true;
        break;
      }
      chunks.push(next.value as Buffer);
      size += (next.value as Buffer).length;
    }
    const head = Buffer.concat(chunks);
    compression = detectCompression(head);
    input = Readable.from(
      (async function* () {
        if (head.length) yield head;
        if (ended) return;
        for (;;) {
          const next = await iterator.next();
          if (next.done) return;
          yield next.value as Buffer;
        }
      })(),
      { objectMode: false },
    );
  }
  if (compression === 'none') return input;
  const filter =
    compression === 'gzip'
      ? createGunzip({ chunkSize: 256 * 1024 })
      : compression === 'zstd'
        ? processFilter('zstd', ['-d', '-c', '-q'])
        : processFilter(compression, ['-d', '-c']);
  input.on('error', (e) => filter.destroy(e));
  return input.pipe(filter);
}

export interface CompressOptions {
  /** gzip level (1 = fastest … 9); default 6, the level docker and tar use. */
  gzipLevel?: number | undefined;
  zstdLevel?: number | undefined;
}

/** A compressing transform for a layer, or undefined for `none`. */
export function compressor(compression: LayerCompression, options: CompressOptions = {}): Duplex | undefined {
  if (compression === 'none') return undefined;
  if (compression === 'gzip') return new ParallelGzip(options.gzipLevel ?? 6);
  const level = options.zstdLevel ?? 3;
  return processFilter('zstd', ['-c', '-q', ...(level > 19 ? ['--ultra'] : []), `-${level}`, '-T0']);
}
