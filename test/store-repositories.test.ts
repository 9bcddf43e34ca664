import test from 'ava';
import { digestOf, MediaType } from '../oci/index.js';
import { InvalidPathError, ManifestNotFoundError, Store } from '../store/index.js';
import { tempDir } from './helpers/temp.js';

test('tags list in lexical order with n/last pagination', async (t) => {
  const store = await Store.open(tempDir());
  const d = digestOf('m');
  const tags = ['v10', 'v2', 'latest', 'A', 'b_1', 'v1.0', '_x'];
  for (const tag of tags) await store.repositories.setTag('team/app', tag, d);
  const all = await store.repositories.listTags('team/app');
  t.deepEqual(all.items, ['A', '_x', 'b_1', 'latest', 'v1.0', 'v10', 'v2']);
  t.false(all.more);
  const p1 = await store.repositories.listTags('team/app', { n: 3 });
  t.deepEqual(p1, { items: ['A', '_x', 'b_1'], more: true });
  const p2 = await store.repositories.listTags('team/app', { n: 3, last: 'b_1' });
  t.deepEqual(p2, { items: ['latest', 'v1.0', 'v10'], more: true });
  const p3 = await store.repositories.listTags('team/app', { n: 3, last: 'v10' });
  t.deepEqual(p3, { items: ['v2'], more: false });
  t.deepEqual(await store.repositories.listTags('team/app', { n: 0 }), { items: [], more: true });
  t.deepEqual((await store.repositories.listTags('nothing/here')).items, []);
});

test('catalog lists nested repositories in lexical order, paginated', async (t) => {
  const store = await Store.open(tempDir());
  const d = digestOf('m');
  for (const name of ['b', 'a/b/c', 'a', 'a/b', 'z-z']) await store.repositories.linkManifest(name, { digest: d, mediaType: MediaType.ociManifest, size: 1 });
  await store.repositories.linkBlob('only/blobs', digestOf('l'));
  t.deepEqual((await store.repositories.catalog()).items, ['a', 'a/b', 'a/b/c', 'b', 'only/blobs', 'z-z']);
  t.deepEqual(await store.repositories.catalog({ n: 2, last: 'a/b' }), { items: ['a/b/c', 'b'], more: true });
});

test('manifests and blobs are linked per repository; unlinking a manifest drops its tags', async (t) => {
  const store = await Store.open(tempDir());
  const m1 = digestOf('m1');
  const m2 = digestOf('m2');
  await store.repositories.linkManifest('app', { digest: m1, mediaType: MediaType.ociManifest, size: 2 });
  await store.repositories.linkManifest('app', { digest: m2, mediaType: MediaType.dockerManifest, size: 2 });
  await store.repositories.setTag('app', 'one', m1);
  await store.repositories.setTag('app', 'also-one', m1);
  await store.repositories.setTag('app', 'two', m2);
  t.is((await store.repositories.getManifestLink('app', m2))?.mediaType, MediaType.dockerManifest);
  t.is(await store.repositories.getManifestLink('other', m2), undefined);
  await store.repositories.unlinkManifest('app', m1);
  t.deepEqual((await store.repositories.listTags('app')).items, ['two']);
  t.is(await store.repositories.resolveTag('app', 'one'), undefined);
  await t.throwsAsync(store.repositories.unlinkManifest('app', m1), { instanceOf: ManifestNotFoundError });

  const layer = digestOf('layer');
  t.false(await store.repositories.hasBlob('app', layer));
  await store.repositories.linkBlob('app', layer);
  t.true(await store.repositories.hasBlob('app', layer));
  t.false(await store.repositories.hasBlob('other', layer));
  t.true(await store.repositories.unlinkBlob('app', layer));
  t.false(await store.repositories.unlinkBlob('app', layer));
});

test('hostile repository names and tags never reach outside the store', async (t) => {
  const store = await Store.open(tempDir());
  for (const name of ['../etc', 'a/../../b', '/abs', 'a//b', 'UPPER', 'a/', '.', 'a/_layers', '']) {
    await t.throwsAsync(store.repositories.setTag(name, 'x', digestOf('m')), { instanceOf: InvalidPathError }, name);
  }
  for (const tag of ['../x', 'a/b', '.hidden', '']) {
    await t.throwsAsync(store.repositories.setTag('app', tag, digestOf('m')), { instanceOf: InvalidPathError }, tag);
  }
});

test('referrers are recorded per subject', async (t) => {
  const store = await Store.open(tempDir());
  const subject = digestOf('subject');
  await store.repositories.addReferrer('app', subject, {
    mediaType: MediaType.ociManifest,
    digest: digestOf('sig'),
    size: 3,
    artifactType: 'application/example',
  });
  t.deepEqual(
    (await store.repositories.listReferrers('app', subject)).map((r) => r.artifactType),
    ['application/example'],
  );
  t.deepEqual(await store.repositories.listReferrers('app', digestOf('none')), []);
  await store.repositories.removeReferrer('app', subject, digestOf('sig'));
  t.deepEqual(await store.repositories.listReferrers('app', subject), []);
});
