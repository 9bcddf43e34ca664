import { promises as fs } from 'node:fs';
import { processAlive, formatReference, parseNormalized, type Digest, type Reference } from '../oci/index.js';
import type { StorageDriver } from './driver/storage-driver.js';
import { ImageNotFoundError, PathNotFoundError } from './errors.js';

/** One local image name → manifest digest, as `tsbuild images` lists them. */
export interface ImageRecord {
  /** Fully qualified reference, e.g. `docker.io/library/busybox:latest`. */
  name: string;
  /** Digest of the manifest (or index) the name points at. */
  digest: Digest;
  mediaType: string;
  /** When the name was last set. */
  updated: string;
}

const INDEX = 'images/index.json';

/** The builder's local image names. One small JSON document, replaced atomically under a lock. */
export class ImageIndex {
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly driver: StorageDriver) {}

  private async readAll(): Promise<ImageRecord[]> {
    try {
      return JSON.parse((await this.driver.getContent(INDEX)).toString('utf8')) as ImageRecord[];
    } catch (e) {
      if (e instanceof PathNotFoundError) return [];
      throw e;
    }
  }

  /** Serializes read-modify-write within this process and, on a local filesystem, across processes. */
  private async update<T>(change: (records: ImageRecord[]) => T): Promise<T> {
    const run = this.chain
      .catch(() => undefined)
      .then(async () => {
        const release = await this.lockFile();
        try {
          const records = await this.readAll();
          const result = change(records);
          records.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
          await this.driver.putContent(INDEX, JSON.stringify(records, null, 1));
          return result;
        } finally {
          await release();
        }
      });
    this.chain = run;
    return run;
  }

  private async lockFile(): Promise<() => Promise<void>> {
    if (!this.driver.localPath) return async () => undefined;
    const path = this.driver.localPath('images/index.lock');
    await fs.mkdir(this.driver.localPath('images'), { recursive: true });
    for (let attempt = 0; ; attempt++) {
      try {
        const fh = await fs.open(path, 'wx');
        await fh.writeFile(String(process.pid));
        await fh.close();
        return async () => void (await fs.rm(path, { force: true }));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        // A lock whose owner died is stale.
        const owner = Number((await fs.readFile(path, 'utf8').catch(() => '')).trim());
        if (owner && !processAlive(owner)) await fs.rm(path, { force: true });
        else if (attempt > 500) throw new Error(`image index is locked by process ${owner} (${path})`);
        else await new Promise((r) => setTimeout(r, 10));
      }
    }
  }

  async list(): Promise<ImageRecord[]> {
    return this.readAll();
  }

  /** Finds an image by name (`busybox` means `docker.io/library/busybox:latest`), by `name@digest`, or by a digest / image id prefix. */
  async get(input: string): Promise<ImageRecord> {
    const records = await this.readAll();
    const byName = tryParse(input);
    if (byName) {
      const full = formatReference(byName);
      const hit = records.find((r) => r.name === full);
      if (hit) return hit;
      if (byName.digest) {
        const sameDigest = records.find((r) => r.digest === byName.digest);
        if (sameDigest) return { ...sameDigest, name: full };
      }
    }
    const hex = input.replace(/^sha256:/, '');
    if (/^[a-f0-9]{4,64}$/.test(hex)) {
      const hits = records.filter((r) => r.digest.slice(7).startsWith(hex));
      if (hits.length >= 1 && new Set(hits.map((h) => h.digest)).size === 1) return hits[0]!;
    }
    throw new ImageNotFoundError(input);
  }

  async set(ref: Reference, digest: Digest, mediaType: string): Promise<ImageRecord> {
    const name = formatReference(ref);
    const record: ImageRecord = { name, digest, mediaType, updated: new Date().toISOString() };
    await this.update((records) => {
      const i = records.findIndex((r) => r.name === name);
      if (i >= 0) records[i] = record;
      else records.push(record);
    });
    return record;
  }

  /** Removes a name; returns the record removed. */
  async remove(input: string): Promise<ImageRecord> {
    const found = await this.get(input);
    await this.update((records) => {
      const i = records.findIndex((r) => r.name === found.name);
      if (i >= 0) records.splice(i, 1);
    });
    return found;
  }
}

function tryParse(input: string): Reference | undefined {
  try {
    return parseNormalized(input);
  } catch {
    return undefined;
  }
}

export { processAlive };
