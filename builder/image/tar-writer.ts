import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { errnoReason, tempName } from '../../store/index.js';
import { encodeHeader, padding, END_OF_ARCHIVE, type TarHeader } from '../snapshot/index.js';

/**
 * Writes a tar file entry by entry, streaming each body, with the layers' header encoder (a field that
 * does not fit ustar goes into a PAX record); the file appears under its name only once complete
 * (written to a temporary name first).
 */
export class TarFileWriter {
  private readonly out = new PassThrough({ highWaterMark: 1 << 20 });
  private readonly done: Promise<void>;
  private readonly tmp: string;
  private readonly dirs = new Set<string>();

  /** `dest` `-` is standard output (`-o type=docker,dest=-`, `tsbuild save REF | docker load`). */
  constructor(private readonly dest: string) {
    if (dest === '-') {
      this.tmp = '';
      this.out.pipe(process.stdout, { end: false });
      this.done = new Promise<void>((resolve, reject) => {
        this.out.on('end', () => (process.stdout.writableNeedDrain ? process.stdout.once('drain', () => resolve()) : resolve()));
        this.out.on('error', reject);
        process.stdout.once('error', reject);
      });
    } else {
      this.tmp = tempName(dest);
      this.done = pipeline(this.out, createWriteStream(this.tmp)).catch((e: NodeJS.ErrnoException) => {
        // the temporary name is ours, not the person's: name the file they asked for
        throw Object.assign(new Error(`cannot write ${dest}: ${errnoReason(e)}`), { code: e.code });
      });
    }
    this.done.catch(() => undefined);
  }

  private async write(chunk: Buffer): Promise<void> {
    if (chunk.length === 0) return;
    if (!this.out.write(chunk)) await Promise.race([once(this.out, 'drain'), this.done]);
  }

  private header(name: string, type: 'file' | 'directory', size: number): TarHeader {
    return { name, type, mode: type === 'directory' ? 0o755 : 0o644, uid: 0, gid: 0, size, mtime: 0 };
  }

  private async ensureParents(name: string): Promise<void> {
    const parts = name.split('/').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const dir = parts.slice(0, i).join('/') + '/';
      if (this.dirs.has(dir)) continue;
      this.dirs.add(dir);
      await this.write(encodeHeader(this.header(dir, 'directory', 0)));
    }
  }

  async file(name: string, body: Buffer | string): Promise<void> {
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    await this.ensureParents(name);
    await this.write(Buffer.concat([encodeHeader(this.header(name, 'file', bytes.length)), bytes, padding(bytes.length)]));
  }

  /** An entry whose `size` bytes come from `source` (a source of another length is an error). */
  async stream(name: string, size: number, source: Readable): Promise<void> {
    await this.ensureParents(name);
    await this.write(encodeHeader(this.header(name, 'file', size)));
    let written = 0;
    for await (const chunk of source) {
      written += (chunk as Buffer).length;
      if (written > size) break;
      await this.write(chunk as Buffer);
    }
    if (written !== size) throw new Error(`${name} has ${written > size ? 'more' : 'fewer'} bytes than its ${size} expected: the store's copy is damaged`);
    await this.write(padding(size));
  }

  async finish(): Promise<void> {
    await this.write(END_OF_ARCHIVE);
    this.out.end();
    await this.done;
    if (this.dest !== '-') await rename(this.tmp, this.dest);
  }

  async abort(): Promise<void> {
    this.out.destroy();
    await this.done.catch(() => undefined);
    if (this.dest !== '-') await rm(this.tmp, { force: true });
  }
}
