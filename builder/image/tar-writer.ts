import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar, { type Header } from 'tar-stream';
import { tempName } from '../../store/index.js';

/**
 * Writes a tar file entry by entry, streaming each body; the file appears under its name only once
 * complete (written to a temporary name first).
 */
export class TarFileWriter {
  private readonly pack = tar.pack();
  private readonly done: Promise<void>;
  private readonly tmp: string;
  private readonly dirs = new Set<string>();

  constructor(private readonly dest: string) {
    this.tmp = tempName(dest);
    this.done = pipeline(this.pack, createWriteStream(this.tmp));
    this.done.catch(() => undefined);
  }

  private async ensureParents(name: string): Promise<void> {
    const parts = name.split('/').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const dir = parts.slice(0, i).join('/') + '/';
      if (this.dirs.has(dir)) continue;
      this.dirs.add(dir);
      await this.add({ name: dir, type: 'directory', mode: 0o755, mtime: new Date(0) });
    }
  }

  private add(header: Partial<Header>, body?: Buffer | string): Promise<void> {
    return new Promise((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      if (body === undefined) this.pack.entry(header as Header, cb);
      else this.pack.entry(header as Header, body, cb);
    });
  }

  async file(name: string, body: Buffer | string): Promise<void> {
    await this.ensureParents(name);
    await this.add({ name, mode: 0o644, mtime: new Date(0), size: Buffer.byteLength(body) }, body);
  }

  async stream(name: string, size: number, source: Readable): Promise<void> {
    await this.ensureParents(name);
    const entry = this.pack.entry({ name, mode: 0o644, mtime: new Date(0), size } as Header);
    await pipeline(source, entry);
  }

  async finish(): Promise<void> {
    this.pack.finalize();
    await this.done;
    await rename(this.tmp, this.dest);
  }

  async abort(): Promise<void> {
    this.pack.destroy();
    await this.done.catch(() => undefined);
    await rm(this.tmp, { force: true });
  }
}
