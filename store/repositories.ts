import { parseDigest, digestAlgorithm, digestHex, isValidRepositoryName, isValidTag, type Digest, type Descriptor } from '../oci/index.js';
import type { StorageDriver } from './driver/storage-driver.js';
import { InvalidPathError, ManifestNotFoundError, PathNotFoundError } from './errors.js';
import { repositoryPath } from './layout.js';

/** What a repository records about a manifest it holds (the bytes live in the blob store). */
export interface ManifestLink {
  digest: Digest;
  mediaType: string;
  size: number;
}

export interface Page {
  /** At most this many entries. */
  n?: number;
  /** Entries strictly after this one, in lexical order. */
  last?: string;
}

/** Lexical (code point) order, as distribution sorts tags and repositories. */
export function lexicalCompare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function paginate(sorted: string[], page: Page = {}): { items: string[]; more: boolean } {
  let items = page.last !== undefined ? sorted.filter((t) => t > page.last!) : sorted;
  let more = false;
  if (page.n !== undefined && items.length > page.n) {
    items = items.slice(0, page.n);
    more = true;
  }
  return { items, more };
}

/**
 * Repositories: which manifests and blobs belong to which repository, and tags. Names are validated by
 * the distribution grammar, so a name can never reach outside `repositories/`.
 */
export class RepositoryStore {
  constructor(private readonly driver: StorageDriver) {}

  private base(name: string): string {
    if (!isValidRepositoryName(name)) throw new InvalidPathError(`invalid repository name "${name}"`);
    return repositoryPath(name);
  }

  private linkPath(name: string, kind: '_layers' | '_manifests/revisions', digest: Digest): string {
    return `${this.base(name)}/${kind}/${digestAlgorithm(digest)}/${digestHex(digest)}`;
  }

  private tagPath(name: string, tag: string): string {
    if (!isValidTag(tag)) throw new InvalidPathError(`invalid tag "${tag}"`);
    return `${this.base(name)}/_manifests/tags/${tag}`;
  }

  // blobs

  async linkBlob(name: string, digest: Digest): Promise<void> {
    await this.driver.putContent(this.linkPath(name, '_layers', digest), digest);
  }

  async hasBlob(name: string, digest: Digest): Promise<boolean> {
    try {
      await this.driver.stat(this.linkPath(name, '_layers', digest));
      return true;
    } catch (e) {
      if (e instanceof PathNotFoundError) return false;
      throw e;
    }
  }

  async unlinkBlob(name: string, digest: Digest): Promise<boolean> {
    const had = await this.hasBlob(name, digest);
    if (had) await this.driver.delete(this.linkPath(name, '_layers', digest));
    return had;
  }

  // manifests

  async linkManifest(name: string, link: ManifestLink): Promise<void> {
    await this.driver.putContent(this.linkPath(name, '_manifests/revisions', link.digest), JSON.stringify(link));
  }

  async getManifestLink(name: string, digest: Digest): Promise<ManifestLink | undefined> {
    try {
      return JSON.parse((await this.driver.getContent(this.linkPath(name, '_manifests/revisions', digest))).toString('utf8')) as ManifestLink;
    } catch (e) {
      if (e instanceof PathNotFoundError) return undefined;
      throw e;
    }
  }

  /** Removes a manifest from the repository, with every tag pointing at it. */
  async unlinkManifest(name: string, digest: Digest): Promise<void> {
    if (!(await this.getManifestLink(name, digest))) throw new ManifestNotFoundError(name, digest);
    for (const tag of await this.driver.list(`${this.base(name)}/_manifests/tags`)) {
      if ((await this.resolveTag(name, tag)) === digest) await this.driver.delete(this.tagPath(name, tag));
    }
    await this.driver.delete(this.linkPath(name, '_manifests/revisions', digest));
  }

  async listManifests(name: string): Promise<Digest[]> {
    const out: Digest[] = [];
    const root = `${this.base(name)}/_manifests/revisions`;
    for (const alg of await this.driver.list(root)) {
      for (const hex of await this.driver.list(`${root}/${alg}`)) out.push(parseDigest(`${alg}:${hex}`));
    }
    return out;
  }

  // tags

  async setTag(name: string, tag: string, digest: Digest): Promise<void> {
    await this.driver.putContent(this.tagPath(name, tag), digest);
  }

  async resolveTag(name: string, tag: string): Promise<Digest | undefined> {
    try {
      return parseDigest((await this.driver.getContent(this.tagPath(name, tag))).toString('utf8').trim());
    } catch (e) {
      if (e instanceof PathNotFoundError) return undefined;
      throw e;
    }
  }

  async deleteTag(name: string, tag: string): Promise<boolean> {
    const had = (await this.resolveTag(name, tag)) !== undefined;
    if (had) await this.driver.delete(this.tagPath(name, tag));
    return had;
  }

  /** Tags in lexical order, paginated. */
  async listTags(name: string, page?: Page): Promise<{ items: string[]; more: boolean }> {
    const tags = (await this.driver.list(`${this.base(name)}/_manifests/tags`)).filter(isValidTag).sort(lexicalCompare);
    return paginate(tags, page);
  }

  async exists(name: string): Promise<boolean> {
    return (await this.driver.list(`${this.base(name)}/_manifests`)).length > 0 || (await this.driver.list(`${this.base(name)}/_layers`)).length > 0;
  }

  /** Every repository name (nested names included) in lexical order, paginated. */
  async catalog(page?: Page): Promise<{ items: string[]; more: boolean }> {
    const names: string[] = [];
    const walk = async (prefix: string): Promise<void> => {
      const dir = prefix ? `repositories/${prefix}` : 'repositories';
      const children = await this.driver.list(dir);
      if (prefix && (children.includes('_manifests') || children.includes('_layers'))) names.push(prefix);
      for (const child of children) {
        if (child.startsWith('_')) continue;
        await walk(prefix ? `${prefix}/${child}` : child);
      }
    };
    await walk('');
    return paginate(names.sort(lexicalCompare), page);
  }

  // referrers: manifests whose `subject` is a given digest

  async addReferrer(name: string, subject: Digest, descriptor: Descriptor): Promise<void> {
    await this.driver.putContent(`${this.base(name)}/_referrers/${digestAlgorithm(subject)}/${digestHex(subject)}/${digestAlgorithm(descriptor.digest)}-${digestHex(descriptor.digest)}`, JSON.stringify(descriptor));
  }

  async removeReferrer(name: string, subject: Digest, referrer: Digest): Promise<void> {
    await this.driver.delete(`${this.base(name)}/_referrers/${digestAlgorithm(subject)}/${digestHex(subject)}/${digestAlgorithm(referrer)}-${digestHex(referrer)}`);
  }

  async listReferrers(name: string, subject: Digest): Promise<Descriptor[]> {
    const dir = `${this.base(name)}/_referrers/${digestAlgorithm(subject)}/${digestHex(subject)}`;
    const out: Descriptor[] = [];
    for (const entry of await this.driver.list(dir)) {
      try {
        out.push(JSON.parse((await this.driver.getContent(`${dir}/${entry}`)).toString('utf8')) as Descriptor);
      } catch (e) {
        if (!(e instanceof PathNotFoundError)) throw e;
      }
    }
    return out;
  }

  async deleteRepository(name: string): Promise<void> {
    await this.driver.delete(this.base(name));
  }
}
