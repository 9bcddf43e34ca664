import { createHash } from 'node:crypto';
import { createWriteStream, promises as fs } from 'node:fs';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export interface FetchedFile {
  /** Local file holding the body. */
  path: string;
  /** The name ADD gives it when the destination is a directory. */
  name: string;
  /** Last-Modified, when the server sent one. */
  mtime?: Date;
  digest: string;
}

export function isUrl(source: string): boolean {
  return /^https?:\/\//i.test(source);
}

/** Downloads an ADD URL into `file`, verifying `--checksum` when given. */
export async function fetchUrl(url: string, file: string, checksum?: string): Promise<FetchedFile> {
  let res: Response;
  try {
    res = await fetch(url, { redirect: 'follow' });
  } catch (e) {
    throw new Error(`ADD cannot fetch ${url}: ${(e as Error).cause instanceof Error ? ((e as Error).cause as Error).message : (e as Error).message}`);
  }
  if (!res.ok || !res.body) throw new Error(`ADD cannot fetch ${url}: the server answered ${res.status} ${res.statusText}`);
  const hash = createHash('sha256');
  const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
  body.on('data', (c: Buffer) => hash.update(c));
  await pipeline(body, createWriteStream(file, { mode: 0o600 }));
  const digest = `sha256:${hash.digest('hex')}`;
  if (checksum && checksum !== digest) {
    await fs.rm(file, { force: true });
    throw new Error(`ADD ${url}: checksum mismatch: expected ${checksum}, downloaded content has ${digest}`);
  }
  const lastModified = res.headers.get('last-modified');
  const mtime = lastModified ? new Date(lastModified) : undefined;
  // Named after the URL as written (not a redirect's target), as docker does.
  const name = posix.basename(new URL(url).pathname) || '__unnamed__';
  return { path: file, name, ...(mtime && !Number.isNaN(mtime.getTime()) ? { mtime } : {}), digest };
}
