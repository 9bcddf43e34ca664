import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { testWith } from './helpers/tools.js';
import { startDistribution, type RunningRegistry } from './helpers/distribution.js';
import { makeBusyboxImage, type FixtureImage } from './helpers/busybox-image.js';
import { tempDir } from './helpers/temp.js';
import { startFaultProxy } from './helpers/fault-proxy.js';
import { Store } from '../store/index.js';
import { ContentDigestError, RegistryClient, TlsError, UnreachableError, pullImage, pushImage } from '../registry/client/index.js';

const withTools = testWith(['docker-registry', 'openssl']);
let registry: RunningRegistry | undefined;
let image: FixtureImage;
const REF = 'tests/busybox:v1';
const anonymous = async () => undefined;

withTools.before(async () => {
  registry = await startDistribution();
  const seed = await Store.open(tempDir());
  image = await makeBusyboxImage(seed, `${registry.host}/${REF}`);
  const client = new RegistryClient({ credentials: anonymous });
  await pushImage(client, seed, `${registry.host}/${REF}`);
  client.close();
});
withTools.after.always(async () => {
  await registry?.stop();
});

withTools('a download cut in the middle resumes with a Range request', async (t) => {
  const proxy = await startFaultProxy(registry!.url, { cutBlobAfter: 300_000 });
  try {
    const client = new RegistryClient({ credentials: anonymous, retry: { baseDelayMs: 10 } });
    const store = await Store.open(tempDir());
    const pulled = await pullImage(client, store, `${proxy.host}/${REF}`);
    t.is(pulled.digest, image.digest);
    const layer = image.manifest.layers[0]!.digest;
    const gets = proxy.requests.filter((r) => r.method === 'GET' && r.url.endsWith(`/blobs/${layer}`));
    t.is(gets.length, 2);
    t.is(gets[0]!.range, undefined);
    t.regex(gets[1]!.range ?? '', /^bytes=[1-9]\d*-$/);
    t.true(Number(/=(\d+)-/.exec(gets[1]!.range!)![1]) <= 300_000);
    t.true(await store.blobs.has(layer));
    client.close();
  } finally {
    await proxy.close();
  }
});

withTools('bytes that do not match the digest are rejected and never stored', async (t) => {
  const proxy = await startFaultProxy(registry!.url, { corruptBlobs: true });
  try {
    const client = new RegistryClient({ credentials: anonymous });
    const store = await Store.open(tempDir());
    const e = await t.throwsAsync(pullImage(client, store, `${proxy.host}/${REF}`));
    t.true(e instanceof ContentDigestError, e?.message);
    t.regex(e!.message, /does not match its digest/);
    for await (const d of store.blobs.list()) t.fail(`blob ${d} was stored`);
    t.deepEqual(await store.ingests.list(), []);
    t.deepEqual(await store.images.list(), []);
    client.close();
  } finally {
    await proxy.close();
  }
});

withTools('429 with Retry-After is waited out', async (t) => {
  const proxy = await startFaultProxy(registry!.url, { tooManyRequests: { times: 1, retryAfter: 1 } });
  try {
    const client = new RegistryClient({ credentials: anonymous });
    const pulled = await pullImage(client, await Store.open(tempDir()), `${proxy.host}/${REF}`);
    t.is(pulled.digest, image.digest);
    t.is(proxy.requests.filter((r) => r.url.includes('/manifests/')).length, 2);
    client.close();
  } finally {
    await proxy.close();
  }
});

withTools('an unreachable or silent host fails quickly with a message naming it', async (t) => {
  const client = new RegistryClient({ credentials: anonymous, transport: { idleTimeoutMs: 1000 } });
  const refused = await t.throwsAsync(pullImage(client, await Store.open(tempDir()), '127.0.0.1:1/x/y:z'));
  t.true(refused instanceof UnreachableError);
  t.regex(refused!.message, /^cannot reach registry 127\.0\.0\.1:1: connection refused/);
  const sockets: Socket[] = [];
  const silent = createServer((s) => void sockets.push(s));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
  const port = (silent.address() as { port: number }).port;
  const stalled = await t.throwsAsync(pullImage(client, await Store.open(tempDir()), `127.0.0.1:${port}/x/y:z`));
  t.regex(stalled!.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
  for (const s of sockets) s.destroy();
  silent.close();
  client.close();
});

withTools('TLS: an untrusted certificate names --insecure-registry; insecure hosts skip verification', async (t) => {
  const dir = tempDir();
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
      '-days',
      '1',
      '-subj',
      '/CN=registry.test',
    ],
    { stdio: 'ignore' },
  );
  const tls = { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8') };
  const proxy = await startFaultProxy(registry!.url, { tls });
  try {
    const strict = new RegistryClient({ credentials: anonymous, settings: { mirrors: {}, insecureRegistries: [], insecureLoopback: false } });
    const e = await t.throwsAsync(pullImage(strict, await Store.open(tempDir()), `${proxy.host}/${REF}`));
    t.true(e instanceof TlsError, e?.message);
    t.true(e!.message.includes(`--insecure-registry ${proxy.host}`), e!.message);
    strict.close();
    // Marked insecure (explicitly here; loopback is by default): TLS without verification.
    const insecure = new RegistryClient({ credentials: anonymous, settings: { mirrors: {}, insecureRegistries: [proxy.host], insecureLoopback: false } });
    const pulled = await pullImage(insecure, await Store.open(tempDir()), `${proxy.host}/${REF}`);
    t.is(pulled.digest, image.digest);
    t.true(
      proxy.requests.some((r) => r.url.includes('/blobs/')),
      'went over TLS',
    );
    insecure.close();
  } finally {
    await proxy.close();
  }
});

withTools('an upload cut in the middle is retried with a new upload session', async (t) => {
  const proxy = await startFaultProxy(registry!.url, { cutUploadAfter: 100_000 });
  try {
    const source = await Store.open(tempDir());
    const fresh = await makeBusyboxImage(source, `${proxy.host}/tests/upload-retry:v1`);
    const client = new RegistryClient({ credentials: anonymous, retry: { baseDelayMs: 10 }, concurrency: 1 });
    const pushed = await pushImage(client, source, `${proxy.host}/tests/upload-retry:v1`);
    t.is(pushed.digest, fresh.digest);
    const uploads = proxy.requests.filter((r) => r.method === 'PUT' && r.url.includes('/blobs/uploads/'));
    const perBlob = new Map<string, number>();
    for (const u of uploads) {
      const digest = new URL(u.url, 'http://x').searchParams.get('digest')!;
      perBlob.set(digest, (perBlob.get(digest) ?? 0) + 1);
    }
    t.deepEqual([...perBlob.values()].sort(), [1, 2], 'the cut upload was sent again, the other once');
    t.is(proxy.requests.filter((r) => r.method === 'POST').length, 3, 'a new session for the retry');
    const pulled = await pullImage(client, await Store.open(tempDir()), `${registry!.host}/tests/upload-retry:v1`);
    t.is(pulled.digest, fresh.digest);
    client.close();
  } finally {
    await proxy.close();
  }
});
