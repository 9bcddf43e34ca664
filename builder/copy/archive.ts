import { createReadStream, promises as fs } from 'node:fs';
import { basename } from 'node:path';
import { decompress, fsPath, unpackLayer } from '../snapshot/index.js';

function validTarHeader(block: Buffer): boolean {
  if (block.length < 512) return false;
  const stored = parseInt(block.subarray(148, 156).toString('latin1').replace(/\0.*$/s, '').trim(), 8);
  if (Number.isNaN(stored)) return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
  return sum === stored;
}

/**
 * Whether ADD should unpack the file: a tar, plain or compressed with anything layers may be (gzip,
 * zstd) or bzip2/xz — docker's rule: it decompresses and its first block is a tar header.
 */
export async function isTarArchive(path: string): Promise<boolean> {
  const stream = await decompress(createReadStream(fsPath(path), { highWaterMark: 64 * 1024 }));
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
 * Unpacks a (compressed) tar into `destDir` as ADD does (docker's archive.Untar): owners, modes, times,
 * hardlinks, symlinks, devices and the xattrs layers keep (security.capability, user.*, trusted.*), with
 * the tar reader and decompression layers use; `.wh.` names are ordinary files. Every path is resolved
 * inside `destDir`, so `..`, absolute names and symlinks planted by earlier entries cannot write outside it.
 */
export async function extractTarInto(path: string, destDir: string): Promise<void> {
  await fs.mkdir(fsPath(destDir), { recursive: true });
  await unpackLayer(createReadStream(fsPath(path), { highWaterMark: 1 << 20 }), destDir, { mode: 'archive', label: `archive ${basename(path)}` });
}
