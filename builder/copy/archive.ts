import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import { dirname, posix } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import { resolveInRoot } from './root-path.js';

type Compression = 'gzip' | 'bzip2' | 'xz' | 'none';

async function readHead(path: string, n: number): Promise<Buffer> {
  const fh = await fs.open(path, 'r');
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

function compressionOf(head: Buffer): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  if (head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  return 'none';
}

/** The file's bytes decompressed (gzip in-process; bzip2 and xz through their Debian CLIs). */
function decompressed(path: string, compression: Compression): Readable {
  const source = createReadStream(path, { highWaterMark: 1 << 20 });
  if (compression === 'none') return source;
  if (compression === 'gzip') {
    const gunzip = createGunzip();
    source.on('error', (e) => gunzip.destroy(e));
    return source.pipe(gunzip);
  }
  const tool = compression === 'bzip2' ? 'bzip2' : 'xz';
  const child = spawn(tool, ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const out = new PassThrough();
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  child.on('error', (e) => out.destroy(new Error(`cannot run ${tool} to unpack ${path}: ${e.message} (install ${tool === 'xz' ? 'xz-utils' : 'bzip2'})`)));
  child.on('close', (code) => {
    if (code !== 0 && code !== null) out.destroy(new Error(`${tool} failed to unpack ${path}: ${stderr.trim()}`));
  });
  source.pipe(child.stdin);
  child.stdin.on('error', () => undefined);
  child.stdout.pipe(out);
  out.on('close', () => child.kill());
  return out;
}

function validTarHeader(block: Buffer): boolean {
  if (block.length < 512) return false;
  const stored = parseInt(block.subarray(148, 156).toString('latin1').replace(/\0.*$/s, '').trim(), 8);
  if (Number.isNaN(stored)) return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
  return sum === stored;
}

/** Whether ADD should unpack the file: a tar, plain or gzip/bzip2/xz compressed. */
export async function isTarArchive(path: string): Promise<boolean> {
  const compression = compressionOf(await readHead(path, 8));
  if (compression === 'none') return validTarHeader(await readHead(path, 512));
  const stream = decompressed(path, compression);
  const chunks: Buffer[] = [];
  let got = 0;
  try {
    for await (const chunk of stream) {
      chunks.push(chunk as Buffer);
      got += (chunk as Buffer).length;
      if (got >= 512) break;
    }
  } catch {
    return false;
  } finally {
    stream.destroy();
  }
  return validTarHeader(Buffer.concat(chunks));
}

/**
 * Unpacks a (compressed) tar into `destDir` as ADD does: owners, modes and times from the archive,
 * hardlinks and symlinks kept; every path is resolved inside `destDir` so `..`, absolute names and
 * symlinks planted by earlier entries cannot write outside it.
 */
export async function extractTarInto(path: string, destDir: string): Promise<void> {
  const compression = compressionOf(await readHead(path, 8));
  const extract = tar.extract();
  const dirTimes: { path: string; mtime: Date }[] = [];
  extract.on('entry', (header, stream, next) => {
    const handle = async () => {
      const name = posix.normalize('/' + header.name);
      if (name === '/') {
        stream.resume();
        return;
      }
      const parent = await resolveInRoot(destDir, posix.dirname(name));
      await fs.mkdir(parent, { recursive: true });
      const target = posix.join(parent, posix.basename(name));
      const existing = await fs.lstat(target).catch(() => undefined);
      if (existing && !(existing.isDirectory() && header.type === 'directory')) await fs.rm(target, { recursive: true, force: true });
      const mode = (header.mode ?? 0o644) & 0o7777;
      const mtime = header.mtime ?? new Date(0);
      switch (header.type) {
        case 'directory':
          if (!existing?.isDirectory()) await fs.mkdir(target);
          dirTimes.push({ path: target, mtime });
          break;
        case 'file':
        case 'contiguous-file':
          await pipeline(stream, createWriteStream(target, { mode: 0o600 }));
          break;
        case 'symlink':
          await fs.symlink(header.linkname ?? '', target);
          break;
        case 'link': {
          const source = await resolveInRoot(destDir, posix.normalize('/' + (header.linkname ?? '')), false);
          await fs.link(source, target);
          stream.resume();
          return;
        }
        default:
          stream.resume(); // devices and fifos in an ADD archive are skipped
          return;
      }
      stream.resume();
      await fs.lchown(target, header.uid ?? 0, header.gid ?? 0);
      if (header.type !== 'symlink') {
        await fs.chmod(target, mode);
        if (header.type !== 'directory') await fs.utimes(target, mtime, mtime);
      } else {
        await fs.lutimes(target, mtime, mtime).catch(() => undefined);
      }
    };
    handle().then(
      () => next(),
      (e: Error) => extract.destroy(new Error(`cannot unpack ${header.name} from ${path}: ${e.message}`)),
    );
  });
  await fs.mkdir(destDir, { recursive: true });
  await pipeline(decompressed(path, compression), extract);
  for (const d of dirTimes.reverse()) await fs.utimes(d.path, d.mtime, d.mtime).catch(() => undefined);
  void dirname;
}
