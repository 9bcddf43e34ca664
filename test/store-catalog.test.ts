/**
 * Catalog and tag listings: code point order of full names (nested names included), n/last paging that
 * starts at `last` instead of re-reading everything, and pages that stay consistent while repositories
 * come and go between them.
 */
import test from 'ava';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { digestOf, MediaType } from '../oci/index.js';
import { Store, lexicalCompare, paginate, type Page } from '../store/index.js';
import { DirectoryListings } from '../store/driver/directory-listings.js';
import { tempDir } from './helpers/temp.js';

const link = { digest: digestOf('m'), mediaType: MediaType.ociManifest, size: 1 };

async function storeWith(names: string[]): Promise<Store> {
  const store = await Store.open(tempDir());
  for (const name of names) await store.repositories.linkManifest(name, link);
  return store;
}

/** Every page of the catalog from `last` on, n at a time. */
async function walk(store: Store, n: number, last?: string): Promise<{ names: string[]; pages: number }> {
  const names: string[] = [];
  let page: Page = { n, ...(last !== undefined ? { last } : {}) };
  for (let pages = 1; ; pages++) {
    const { items, more } = await store.repositories.catalog(page);
    names.push(...items);
    if (!more) return { names, pages };
    page = { n, last: items[items.length - 1]! };
  }
}

// '-' (0x2d) and '.' (0x2e) sort before '/' (0x2f), which sorts before digits, '_' and letters.
const tricky = ['a', 'a/b', 'a-b', 'a.b', 'a/b-c', 'a/b/c', 'a-b/c', 'a.b/c', 'a0', 'a_b', 'ab', 'b', 'a-b-c', 'a-b.c/d', 'a--b/x/y'];

test('the catalog is in code point order of full names, where a depth-first walk is not', async (t) => {
  const store = await storeWith(tricky);
  const expected = [...tricky].sort(lexicalCompare);
  t.deepEqual(expected, ['a', 'a--b/x/y', 'a-b', 'a-b-c', 'a-b.c/d', 'a-b/c', 'a.b', 'a.b/c', 'a/b', 'a/b-c', 'a/b/c', 'a0', 'a_b', 'ab', 'b']);
  t.deepEqual(await store.repositories.catalog(), { items: expected, more: false });
});

test('every n and every last give the pages of the sorted list, including lasts that are no repository', async (t) => {
  const store = await storeWith(tricky);
  const sorted = [...tricky].sort(lexicalCompare);
  const lasts = [...sorted, 'a-', 'a-b/', 'a.', 'a/', 'a/b/', 'a//b', 'a/b-', 'a-b-c/zz', '..', '0', 'A', 'zzz', 'a-b.c', 'a-b.c/d/e', '_'];
  for (const n of [1, 2, 3, 5, 100]) {
    for (const last of lasts) {
      t.deepEqual(await store.repositories.catalog({ n, last }), paginate(sorted, { n, last }), `n=${n} last=${last}`);
    }
    const { names, pages } = await walk(store, n);
    t.deepEqual(names, sorted, `walk n=${n}`);
    t.is(pages, Math.ceil(sorted.length / n), `pages n=${n}`); // no empty page after a full last one
  }
  t.deepEqual(await store.repositories.catalog({ n: 0 }), { items: [], more: true });
  t.deepEqual(await store.repositories.catalog({ last: 'a/b' }), { items: sorted.slice(sorted.indexOf('a/b') + 1), more: false });
});

test('random nested trees list like a sort of their names, page by page', async (t) => {
  // a deterministic generator, so a failure can be reproduced
  let seed = 42;
  const rand = (k: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % k;
  };
  const parts = ['a', 'b', 'a-b', 'a.b', 'a-b-c', 'a0', 'ab', 'a_b', 'x', 'x-1', 'x.1', '0', '0-a'];
  const names = new Set<string>();
  while (names.size < 120) {
    const depth = 1 + rand(3);
    names.add(Array.from({ length: depth }, () => parts[rand(parts.length)]).join('/'));
  }
  const store = await storeWith([...names]);
  // a blob-only repository counts too, a bare directory without manifests or blobs does not
  await store.repositories.linkBlob('zz/blobs-only', digestOf('l'));
  mkdirSync(join(store.root, 'content', 'repositories', 'a', 'empty-dir'), { recursive: true });
  const sorted = [...names, 'zz/blobs-only'].sort(lexicalCompare);
  t.deepEqual((await store.repositories.catalog()).items, sorted);
  for (const n of [1, 7, 50]) t.deepEqual((await walk(store, n)).names, sorted, `n=${n}`);
  for (let i = 0; i < 60; i++) {
    const last = sorted[rand(sorted.length)]! + ['', '-', '.', '/', '/a', '-a/b'][rand(6)];
    const n = 1 + rand(10);
    t.deepEqual(await store.repositories.catalog({ n, last }), paginate(sorted, { n, last }), `n=${n} last=${last}`);
  }
});

test('a repository deleted or added between pages: the next page starts after last all the same', async (t) => {
  const store = await storeWith(['a', 'a/x', 'a-b', 'b', 'c', 'c/d', 'e']);
  const first = await store.repositories.catalog({ n: 2 });
  t.deepEqual(first, { items: ['a', 'a-b'], more: true });
  // the last name of the page goes away, and so does one the next page would have shown
  await store.repositories.deleteRepository('a-b');
  await store.repositories.deleteRepository('b');
  // one sorting before `last` appears: it is not shown again on later pages
  await store.repositories.linkManifest('a-a', link);
  // one after `last` appears: it is shown
  await store.repositories.linkManifest('c-c', link);
  const second = await store.repositories.catalog({ n: 2, last: 'a-b' });
  t.deepEqual(second, { items: ['a/x', 'c'], more: true });
  const third = await store.repositories.catalog({ n: 2, last: 'c' });
  t.deepEqual(third, { items: ['c-c', 'c/d'], more: true });
  // a nested `last` whose parent was deleted
  await store.repositories.deleteRepository('c');
  t.deepEqual(await store.repositories.catalog({ n: 2, last: 'c/d' }), { items: ['e'], more: false });
});

test('a catalog of a thousand flat repositories pages through in order', async (t) => {
  const store = await Store.open(tempDir());
  // written as files (linking a thousand manifests through the store would fsync each)
  const names: string[] = [];
  for (let i = 0; i < 1000; i++) {
    const name = `r${String((i * 7919) % 1000).padStart(4, '0')}`;
    names.push(name);
    const dir = join(store.root, 'content', 'repositories', name, '_manifests', 'revisions', 'sha256');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, '0'.repeat(64)), JSON.stringify(link));
  }
  const sorted = names.sort(lexicalCompare);
  const { names: walked, pages } = await walk(store, 100);
  t.deepEqual(walked, sorted);
  t.is(pages, 10);
  t.deepEqual(await store.repositories.catalog({ n: 3, last: 'r0499' }), { items: ['r0500', 'r0501', 'r0502'], more: true });
});

test('tags page from last, including lasts that are no tag and tags deleted between pages', async (t) => {
  const store = await Store.open(tempDir());
  const d = digestOf('m');
  const tags = ['v10', 'v2', 'latest', 'A', 'b_1', 'v1.0', '_x', 'v1-rc', 'v1', 'v1.0-1'];
  for (const tag of tags) await store.repositories.setTag('team/app', tag, d);
  const sorted = [...tags].sort(lexicalCompare);
  for (const n of [1, 2, 3, 20]) {
    for (const last of [...sorted, 'B', 'v', 'v1.', 'zzz', '0']) {
      t.deepEqual(await store.repositories.listTags('team/app', { n, last }), paginate(sorted, { n, last }), `n=${n} last=${last}`);
    }
  }
  const first = await store.repositories.listTags('team/app', { n: 4 });
  t.deepEqual(first, { items: ['A', '_x', 'b_1', 'latest'], more: true });
  await store.repositories.deleteTag('team/app', 'latest');
  await store.repositories.deleteTag('team/app', 'v1');
  t.deepEqual(await store.repositories.listTags('team/app', { n: 4, last: 'latest' }), { items: ['v1-rc', 'v1.0', 'v1.0-1', 'v10'], more: true });
  t.deepEqual(await store.repositories.listTags('team/app', { n: 0 }), { items: [], more: true });
  t.deepEqual(await store.repositories.listTags('nothing/here', { n: 2 }), { items: [], more: false });
});

test('a large directory listing is reused only while the directory is unchanged', async (t) => {
  const dir = tempDir();
  for (let i = 0; i < 300; i++) mkdirSync(join(dir, `e${String(i).padStart(3, '0')}`));
  // settled at once (0 ns), so the listing is kept from the first read on
  const listings = new DirectoryListings((name) => !name.includes('.tmp-'), 0n);
  t.deepEqual(await listings.page(dir, 'e297'), ['e298', 'e299']);
  t.deepEqual(await listings.page(dir, undefined, 2), ['e000', 'e001']);
  // directory timestamps move on a coarse clock: let it tick before the change
  await new Promise((r) => setTimeout(r, 30));
  mkdirSync(join(dir, 'e299a'));
  writeFileSync(join(dir, 'e299b.tmp-1-000000000000'), '');
  t.deepEqual(await listings.page(dir, 'e297'), ['e298', 'e299', 'e299a']);
  await new Promise((r) => setTimeout(r, 30));
  mkdirSync(join(dir, 'e2990'));
  t.deepEqual(await listings.page(dir, 'e299', 10), ['e2990', 'e299a']);
  t.deepEqual(await listings.page(join(dir, 'missing'), undefined, 10), []);
});
