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

/** The first n of up to n + 1 items (all when n is absent), and whether there were more. */
function pageOf(items: string[], n: number | undefined): { items: string[]; more: boolean } {
  if (n === undefined || items.length <= n) return { items, more: false };
  return { items: items.slice(0, n), more: true };
}

/** Directory entries asked of the driver at a time while walking repositories. */
const MIN_LIST_CHUNK = 64;
const MAX_LIST_CHUNK = 1000;
/** Repositories' directories read ahead of the walk, concurrently. */
const INSPECT_AHEAD = 8;
/** Entries of a repository's directory read at once to tell what it is (most hold fewer). */
const INSPECT_CHUNK = 64;

interface Inspection {
  /** It has manifests or blobs linked. */
  repository: boolean;
  /** It has directories of nested repositories. */
  nested: boolean;
}

/** A directory under repositories/ whose nested repositories are still to be listed. */
interface PendingSubtree {
  /** Full name of the directory ('a/b'); its nested names all start with `name + '/'`. */
  name: string;
  /** Only names strictly after this one (set when it lies inside the subtree). */
  after?: string;
}

/**
 * Repository names in code point order of the full names, read lazily from the directory tree.
 *
 * A depth-first walk over sorted children is not in that order: '-' and '.' sort before '/', so
 * `a-b` and `a.b` come after `a` but before `a/x`. Within a directory, child `c` contributes its own
 * name `c` (when it is a repository) and the block of names under `c/`; the block sorts where `c/`
 * does. The walk visits children in name order, emits `c` at once and defers its block on a stack
 * until a sibling sorts after `c/` (stacked blocks nest as `a/` over `a-b/` over `a-b.c/`, so the top
 * is always the smallest).
 *
 * Starting after `last`: in each directory on the path to `last` only three kinds of children can
 * hold later names: the component `r0` of `last` at that level (its block, when `last` goes deeper),
 * the children after it (listed from there with the driver's start-after, skipping `r0-…`/`r0.…`,
 * which sort before `r0/`), and prefixes of `r0` cut before a '-' or '.' (`a` for `a-b`), whose blocks
 * sort after `last`. Those are looked up by name. So a page costs the directories on the path to
 * `last` plus the repositories it returns, not the size of the catalog.
 */
class RepositoryWalk {
  constructor(
    private readonly driver: StorageDriver,
    private readonly chunk: number,
  ) {}

  /**
   * Names under `prefix` ('' for all, else 'a/b/' with its slash), strictly after `after` when given
   * (which must then start with `prefix`).
   */
  async *names(prefix: string, after?: string): AsyncGenerator<string> {
    const pending: PendingSubtree[] = [];
    let listFrom: string | undefined;
    if (after !== undefined) {
      const rest = after.slice(prefix.length);
      const slash = rest.indexOf('/');
      const first = slash < 0 ? rest : rest.slice(0, slash);
      // prefixes of `first` cut before '-' or '.', shortest first so the smallest block ends on top
      for (let i = 1; i < first.length; i++) {
        if (first[i] !== '-' && first[i] !== '.') continue;
        const name = prefix + first.slice(0, i);
        if (isValidRepositoryName(name) && (await this.inspect(name)).nested) pending.push({ name });
      }
      if (isValidRepositoryName(prefix + first) && (await this.inspect(prefix + first)).nested) {
        pending.push(slash < 0 ? { name: prefix + first } : { name: prefix + first, after });
      }
      // children named `first-…` or `first.…` sort before `first/`: when `after` is inside `first/`, skip them
      listFrom = slash < 0 ? first : `${first}/`;
    }
    const dir = prefix ? `repositories/${prefix.slice(0, -1)}` : 'repositories';
    for (;;) {
      const listed = await this.driver.listPage(dir, listFrom, this.chunk);
      const children = listed.filter((c) => !c.startsWith('_'));
      const inspections: Promise<Inspection>[] = [];
      const inspection = (i: number): Promise<Inspection> => {
        for (let j = inspections.length; j < Math.min(children.length, i + INSPECT_AHEAD); j++) {
          const p = this.inspect(prefix + children[j]!);
          p.catch(() => {}); // read ahead: awaited, and its error thrown, when its turn comes
          inspections.push(p);
        }
        return inspections[i]!;
      };
      for (let i = 0; i < children.length; i++) {
        const name = prefix + children[i]!;
        while (pending.length > 0 && `${pending[pending.length - 1]!.name}/` < name) {
          const block = pending.pop()!;
          yield* this.names(`${block.name}/`, block.after);
        }
        const found = await inspection(i);
        if (found.repository) yield name;
        if (found.nested) pending.push({ name });
      }
      if (listed.length < this.chunk) break;
      listFrom = listed[listed.length - 1];
    }
    while (pending.length > 0) {
      const block = pending.pop()!;
      yield* this.names(`${block.name}/`, block.after);
    }
  }

  /** Whether `name` is a repository (has manifests or blobs linked) and whether it has nested directories. */
  private async inspect(name: string): Promise<Inspection> {
    const dir = `repositories/${name}`;
    const head = await this.driver.listPage(dir, undefined, INSPECT_CHUNK);
    const found: Inspection = {
      repository: head.includes('_manifests') || head.includes('_layers'),
      nested: head.some((e) => !e.startsWith('_')),
    };
    if (head.length < INSPECT_CHUNK || found.repository) return found;
    // A large namespace: its own entries ('_layers', '_manifests', …) sort after nested names that start
    // with a digit and before those that start with a letter; read just that stretch.
    let after = '_';
    for (;;) {
      const entries = await this.driver.listPage(dir, after, 4);
      for (const e of entries) {
        if (!e.startsWith('_')) return found;
        if (e === '_manifests' || e === '_layers') return { ...found, repository: true };
      }
      if (entries.length < 4) return found;
      after = entries[entries.length - 1]!;
    }
  }
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

  /** Every blob linked into the repository (pushed, mounted or pulled through it), unordered. */
  async listBlobs(name: string): Promise<Digest[]> {
    const out: Digest[] = [];
    const root = `${this.base(name)}/_layers`;
    for (const alg of await this.driver.list(root)) {
      for (const hex of await this.driver.list(`${root}/${alg}`)) {
        try {
          out.push(parseDigest(`${alg}:${hex}`));
        } catch {
          // a stray name, not a link
        }
      }
    }
    return out;
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

  /** When the manifest was (last) linked into the repository; undefined when it is not there. */
  async manifestLinkedAt(name: string, digest: Digest): Promise<Date | undefined> {
    try {
      return (await this.driver.stat(this.linkPath(name, '_manifests/revisions', digest))).modTime;
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

  /**
   * Tags in lexical order, paginated: `page.n` tags (all when absent) strictly after `page.last`; `more`
   * tells whether any follow. Reads one page of the tag directory, not the whole of it.
   */
  async listTags(name: string, page: Page = {}): Promise<{ items: string[]; more: boolean }> {
    const dir = `${this.base(name)}/_manifests/tags`;
    // one beyond the page answers `more`
    const want = page.n === undefined ? Infinity : page.n + 1;
    const items: string[] = [];
    let after = page.last;
    while (items.length < want) {
      const limit = want === Infinity ? undefined : want - items.length;
      const chunk = await this.driver.listPage(dir, after, limit);
      for (const tag of chunk) if (isValidTag(tag)) items.push(tag);
      if (limit === undefined || chunk.length < limit) break;
      after = chunk[chunk.length - 1];
    }
    return pageOf(items, page.n);
  }

  async exists(name: string): Promise<boolean> {
    return (await this.driver.list(`${this.base(name)}/_manifests`)).length > 0 || (await this.driver.list(`${this.base(name)}/_layers`)).length > 0;
  }

  /**
   * Every repository name (nested names included) in lexical order, paginated: `page.n` names (all when
   * absent) strictly after `page.last` (which need not exist any more); `more` tells whether any follow.
   * A page reads the directories along the path to `last` and then about n + 1 repositories' directories
   * (see RepositoryWalk), however many repositories the store holds.
   */
  async catalog(page: Page = {}): Promise<{ items: string[]; more: boolean }> {
    const want = page.n === undefined ? Infinity : page.n + 1;
    const walk = new RepositoryWalk(this.driver, Math.min(Math.max(want, MIN_LIST_CHUNK), MAX_LIST_CHUNK));
    const items: string[] = [];
    for await (const name of walk.names('', page.last)) {
      items.push(name);
      if (items.length >= want) break;
    }
    return pageOf(items, page.n);
  }

  // referrers: manifests whose `subject` is a given digest

  async addReferrer(name: string, subject: Digest, descriptor: Descriptor): Promise<void> {
    await this.driver.putContent(
      `${this.base(name)}/_referrers/${digestAlgorithm(subject)}/${digestHex(subject)}/${digestAlgorithm(descriptor.digest)}-${digestHex(descriptor.digest)}`,
      JSON.stringify(descriptor),
    );
  }

  async removeReferrer(name: string, subject: Digest, referrer: Digest): Promise<void> {
    await this.driver.delete(
      `${this.base(name)}/_referrers/${digestAlgorithm(subject)}/${digestHex(subject)}/${digestAlgorithm(referrer)}-${digestHex(referrer)}`,
    );
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
