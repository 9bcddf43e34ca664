import test from 'ava';
import { spawn } from 'node:child_process';
import { digestOf, MediaType, parseNormalized } from '../oci/index.js';
import { ImageNotFoundError, Store } from '../store/index.js';
import { tempDir } from './helpers/temp.js';

test('local image index: set, get by short name, by digest prefix, remove', async (t) => {
  const store = await Store.open(tempDir());
  const d = digestOf('manifest');
  await store.images.set(parseNormalized('busybox'), d, MediaType.ociManifest);
  await store.images.set(parseNormalized('localhost:5000/app:v1'), d, MediaType.ociManifest);
  t.is((await store.images.get('busybox')).name, 'docker.io/library/busybox:latest');
  t.is((await store.images.get('docker.io/library/busybox:latest')).digest, d);
  t.is((await store.images.get(d.slice(7, 19))).digest, d);
  t.is((await store.images.get(`busybox@${d}`)).digest, d);
  t.deepEqual(
    (await store.images.list()).map((r) => r.name),
    ['docker.io/library/busybox:latest', 'localhost:5000/app:v1'],
  );
  await store.images.remove('busybox');
  await t.throwsAsync(store.images.get('busybox'), { instanceOf: ImageNotFoundError, message: 'image not found: busybox' });
  t.is((await store.images.list()).length, 1);
});

test('concurrent updates from two processes lose no names', async (t) => {
  const root = tempDir();
  await Store.open(root);
  const storeModule = new URL('../store/index.js', import.meta.url).href;
  const ociModule = new URL('../oci/index.js', import.meta.url).href;
  const script = `
    const { Store } = await import(${JSON.stringify(storeModule)});
    const { parseNormalized, digestOf } = await import(${JSON.stringify(ociModule)});
    const store = await Store.open(process.argv[1]);
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.images.set(parseNormalized('app' + process.argv[2] + ':' + i), digestOf('x'), 'm')));`;
  const one = (n: string) =>
    new Promise<void>((resolve, reject) =>
      spawn(process.execPath, ['--input-type=module', '-e', script, root, n], { stdio: 'inherit' }).on('exit', (c) =>
        c === 0 ? resolve() : reject(new Error(`exit ${c}`)),
      ),
    );
  await Promise.all([one('a'), one('b')]);
  const store = await Store.open(root);
  t.is((await store.images.list()).length, 40);
});
