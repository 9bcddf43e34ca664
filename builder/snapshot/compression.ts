import { spawn } from 'node:child_process';
import { Duplex, PassThrough, Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { ParallelGzip } from './parallel-gzip.js';
import type { LayerCompression } from '../../oci/index.js';

export type DecompressMode = LayerCompression | 'auto';

/** A transform running an external filter (zstd: Node 20's zlib has none). */
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
  child.on('error', (e) => output.destroy(new Error(`cannot run ${cmd}: ${e.message} (install it with scripts/setup.sh)`)));
  child.stdin.on('error', () => undefined);
  const duplex = Duplex.from({ writable: child.stdin, readable: output });
  duplex.on('close', () => {
    if (exited === undefined) child.kill('SIGKILL');
  });
  return duplex;
}

const GZIP_MAGIC = [0x1f, 0x8b];
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];

function startsWith(buf: Buffer, magic: number[]): boolean {
  return magic.every((b, i) => buf[i] === b);
}

/** The uncompressed bytes of a layer blob; `auto` recognises gzip and zstd by their magic bytes. */
export async function decompress(source: Readable, mode: DecompressMode = 'auto'): Promise<Readable> {
  let compression = mode;
  let input: Readable = source;
  if (mode === 'auto') {
    const iterator = source[Symbol.asyncIterator]();
    const chunks: Buffer[] = [];
    let size = 0;
    let ended = false;
    while (size < 4) {
      const next = await iterator.next();
      if (next.done) {
        ended = true;
        break;
      }
      chunks.push(next.value as Buffer);
      size += (next.value as Buffer).length;
    }
    const head = Buffer.concat(chunks);
    compression = startsWith(head, GZIP_MAGIC) ? 'gzip' : startsWith(head, ZSTD_MAGIC) ? 'zstd' : 'none';
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
  const filter = compression === 'gzip' ? createGunzip({ chunkSize: 256 * 1024 }) : processFilter('zstd', ['-d', '-c', '-q']);
  input.on('error', (e) => filter.destroy(e));
  return input.pipe(filter);
}

export interface CompressOptions {
  /** gzip level (1 = fastest … 9); default 6, the level docker and tar use. */
  gzipLevel?: number;
  zstdLevel?: number;
}

/** A compressing transform for a layer, or undefined for `none`. */
export function compressor(compression: LayerCompression, options: CompressOptions = {}): Duplex | undefined {
  if (compression === 'none') return undefined;
  if (compression === 'gzip') return new ParallelGzip(options.gzipLevel ?? 6);
  return processFilter('zstd', ['-c', '-q', `-${options.zstdLevel ?? 3}`, '-T0']);
}
