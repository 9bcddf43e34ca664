/**
 * `_catalog` and `tags/list` over HTTP: pages in code point order, `n` and `last`, and a `Link` to the
 * next page that a client can follow to the end, also when repositories go away between pages.
 */
import test from 'ava';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { MediaType } from '../oci/index.js';
import { lexicalCompare } from '../store/index.js';
import { pushBlob, pushImage, startTestRegistry, type TestRegistry } from './helpers/registry-http.js';

let reg: TestRegistry;
let storage: string;
const names = ['a', 'a/b', 'a-b', 'a.b', 'a/b/c', 'a-b/c', 'a0', 'b', 'b/x-y', 'b-x'];

test.before(async () => {
  reg = await startTestRegistry();
  storage = reg.server.store.root;
  for (const name of names) await pushBlob(reg, name, `blob of ${name}`);
});
test.after.always(async () => {
  await reg?.close();
});

/** Follows Link headers from `path`; returns the pages' lists and the Link of each. */
async function follow(path: string, key: 'repositories' | 'tags'): Promise<{ pages: string[][]; links: (string | undefined)[] }> {
  const pages: string[][] = [];
  const links: (string | undefined)[] = [];
  let next: string | undefined = path;
  while (next !== undefined) {
    const r = await reg.call('GET', next);
    if (r.status !== 200) throw new Error(`GET ${next}: ${r.status}`);
    pages.push(r.json()[key]);
    const link = r.headers.link as string | undefined;
    links.push(link);
    next = link ? /^<([^>]+)>; rel="next"$/.exec(link)![1] : undefined;
    if (pages.length > 100) throw new Error('no end');
  }
  return { pages, links };
}

test.serial('following Link walks the catalog in code point order of full names, n at a time', async (t) => {
  const sorted = [...names].sort(lexicalCompare);
  t.deepEqual(sorted, ['a', 'a-b', 'a-b/c', 'a.b', 'a/b', 'a/b/c', 'a0', 'b', 'b-x', 'b/x-y']);
  t.deepEqual((await reg.call('GET', '/v2/_catalog')).json(), { repositories: sorted });
  for (const n of [1, 3, 4, 10]) {
    const { pages, links } = await follow(`/v2/_catalog?n=${n}`, 'repositories');
    t.deepEqual(pages.flat(), sorted, `n=${n}`);
    t.is(pages.length, Math.ceil(sorted.length / n), `n=${n}: no empty page after a full last one`);
    t.true(pages.every((p) => p.length === n || p === pages[pages.length - 1]));
    t.is(links[links.length - 1], undefined);
  }
  const page = await reg.call('GET', `/v2/_catalog?n=2&last=${encodeURIComponent('a-b/c')}`);
  t.deepEqual(page.json(), { repositories: ['a.b', 'a/b'] });
  t.is(page.headers.link, `</v2/_catalog?n=2&last=${encodeURIComponent('a/b')}>; rel="next"`);
  // `last` needs not be a repository
  t.deepEqual((await reg.call('GET', '/v2/_catalog?n=3&last=a%2F')).json().repositories, ['a/b', 'a/b/c', 'a0']);
  t.deepEqual((await reg.call('GET', '/v2/_catalog?n=3&last=zzz')).json().repositories, []);
  const bad = await reg.call('GET', '/v2/_catalog?n=x');
  t.is(bad.status, 400);
  t.is(bad.code, 'PAGINATION_NUMBER_INVALID');
});

test.serial('repositories removed between pages: the next page still starts right after last', async (t) => {
  const first = await reg.call('GET', '/v2/_catalog?n=4');
  t.deepEqual(first.json().repositories, ['a', 'a-b', 'a-b/c', 'a.b']);
  // another process sharing the store removes the page's last repository and one of the next page
  const repositories = join(storage, 'content', 'repositories');
  rmSync(join(repositories, 'a.b'), { recursive: true });
  rmSync(join(repositories, 'a', 'b', '_layers'), { recursive: true });
  const { pages } = await follow(/^<([^>]+)>/.exec(first.headers.link as string)![1]!, 'repositories');
  t.deepEqual(pages.flat(), ['a/b/c', 'a0', 'b', 'b-x', 'b/x-y']);
});

test.serial('tags/list pages with n, last and Link', async (t) => {
  const img = await pushImage(reg, 'tagged', 'v1');
  const tags = ['v1', 'v1-rc', 'v1.0', 'v10', 'V2', 'latest', '_x'];
  for (const tag of tags.slice(1)) {
    const r = await reg.call('PUT', `/v2/tagged/manifests/${tag}`, { headers: { 'Content-Type': MediaType.ociManifest }, body: img.bytes });
    t.is(r.status, 201);
  }
  const sorted = [...tags].sort(lexicalCompare);
  t.deepEqual(sorted, ['V2', '_x', 'latest', 'v1', 'v1-rc', 'v1.0', 'v10']);
  for (const n of [1, 2, 7]) {
    const { pages, links } = await follow(`/v2/tagged/tags/list?n=${n}`, 'tags');
    t.deepEqual(pages.flat(), sorted, `n=${n}`);
    t.is(links[0], n < sorted.length ? `</v2/tagged/tags/list?n=${n}&last=${pages[0]![n - 1]}>; rel="next"` : undefined);
  }
  t.deepEqual((await reg.call('GET', '/v2/tagged/tags/list?n=2&last=v1.')).json().tags, ['v1.0', 'v10']);
  // a tag deleted between pages
  t.is((await reg.call('DELETE', '/v2/tagged/manifests/v1')).status, 202);
  t.deepEqual((await reg.call('GET', '/v2/tagged/tags/list?n=2&last=v1')).json().tags, ['v1-rc', 'v1.0']);
});
