import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { Digest } from '../../oci/index.js';
import type { Store } from '../../store/index.js';

const MAX_SOURCES = 5;

/**
 * Which registry repositories are known to hold a blob (because we pulled it from or pushed it to them),
 * so a push to another repository of the same registry can mount it instead of uploading it. A hint only:
 * concurrent writers may lose an entry, which costs an upload, never correctness.
 */
export class BlobSources {
  private constructor(private readonly file: string) {}

  static async open(store: Store): Promise<BlobSources> {
    return new BlobSources(join(await store.localDir('registry-client'), 'blob-sources.json'));
  }

  private async read(): Promise<Record<string, string[]>> {
    try {
      return JSON.parse(await fs.readFile(this.file, 'utf8')) as Record<string, string[]>;
    } catch {
      return {};
    }
  }

  /** `registry/repository` names holding the blob, most recent first. */
  async get(digest: Digest): Promise<string[]> {
    return (await this.read())[digest] ?? [];
  }

  async add(entries: { digest: Digest; repository: string }[]): Promise<void> {
    if (!entries.length) return;
    const all = await this.read();
    for (const { digest, repository } of entries) {
      all[digest] = [repository, ...(all[digest] ?? []).filter((r) => r !== repository)].slice(0, MAX_SOURCES);
    }
    const tmp = `${this.file}.${process.pid}.${Date.now()}.tmp`;
    await fs.writeFile(tmp, JSON.stringify(all));
    await fs.rename(tmp, this.file);
  }
}
