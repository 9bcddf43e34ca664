import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { commitUpperDir, encodeHeader, openSnapshots, unpackImageLayers } from '../builder/snapshot/index.js';
import { runOnSnapshot, type SnapshotRunOptions } from '../builder/solver/overlay.js';
import { digestOf, MediaType, type DiffID } from '../oci/index.js';
import { Store, type Snapshot } from '../store/index.js';
import { makeBusyboxImage } from './helpers/busybox-image.js';
import { baseSnapshot, leftovers, listLayer } from './helpers/layers.js';
import { tempDir } from './helpers/temp.js';
import { testWith } from './helpers/tools.js';

// Tests that look for leftovers of this process run serially, so no other test's live step is counted.
const test = testWith(['runc', 'ip']);

interface Ran {
  exitCode: number;
  stdout: string;
  stderr: string;
  upper: string;
}

async function sh(store: Store, lower: Snapshot | undefined, script: string, extra: Partial<SnapshotRunOptions> = {}): Promise<Ran> {
  const upper = await (await openSnapshots(store)).tempDir('upper');
  let stdout = '';
  let stderr = '';
  const { exitCode } = await runOnSnapshot(store, {
    lowers: lower?.chainId,
    upperDir: upper,
    args: ['/bin/sh', '-c', script],
    network: 'none',
    onStdout: (d) => (stdout += d),
    onStderr: (d) => (stderr += d),
    ...extra,
  });
  return { exitCode, stdout, stderr, upper };
}

async function setup() {
  const store = await Store.open(tempDir());
  return { store, base: await baseSnapshot(store) };
}

test.serial('echo runs in the busybox rootfs and its output streams back', async (t) => {
  const { store, base } = await setup();
  const r = await sh(store, base, 'echo hello; echo oops >&2');
  t.is(r.exitCode, 0);
  t.is(r.stdout, 'hello\n');
  t.is(r.stderr, 'oops\n');
  t.deepEqual(await leftovers(store.root, process.pid), {
    mounts: [],
    containers: [],
    dirs: [join(store.root, 'snapshots', r.upper.split('/').pop()!)],
    networks: [],
  });
});

test('exit codes come back, including death by signal', async (t) => {
  const { store, base } = await setup();
  t.is((await sh(store, base, 'exit 0')).exitCode, 0);
  t.is((await sh(store, base, 'exit 42')).exitCode, 42);
  t.is((await sh(store, base, 'sh -c "kill -9 \\$\\$"; exit $?')).exitCode, 137, 'a child killed by SIGKILL');
  t.is((await sh(store, base, '/no/such/command')).exitCode, 127);
});

test('env, cwd (created when missing) and user names resolved from the image', async (t) => {
  const { store, base } = await setup();
  const r = await sh(store, base, 'echo "$GREETING|$PATH|$HOME"; pwd; id', { env: ['GREETING=hi there'], cwd: '/work/deep', user: 'app' });
  t.is(r.exitCode, 0, r.stderr);
  const [vars, cwd, id = ''] = r.stdout.trim().split('\n');
  t.is(vars, 'hi there|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin|/home/app');
  t.is(cwd, '/work/deep');
  t.regex(id, /^uid=1000\(app\) gid=1000\(app\)/);
  t.regex((await sh(store, base, 'id', { user: 'app:daemon' })).stdout, /^uid=1000\(app\) gid=1\(daemon\)/);
  t.regex((await sh(store, base, 'id', { user: '4242:4343' })).stdout, /^uid=4242 gid=4343/);
  t.regex((await sh(store, base, 'id', { user: 'nobody' })).stdout, /^uid=65534\(nobody\) gid=65534\(nogroup\)/);
  await t.throwsAsync(sh(store, base, 'id', { user: 'ghost' }), { message: /unable to find user ghost/ });
  await t.throwsAsync(sh(store, base, 'id', { user: 'app:ghosts' }), { message: /unable to find group ghosts/ });
  t.deepEqual((await leftovers(store.root, process.pid)).mounts, []);
});

test('network none isolates, host shares the host network; hostname and hosts files are provided', async (t) => {
  const { store, base } = await setup();
  const none = await sh(
    store,
    base,
    'cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d " "; ip link show lo | grep -o "<.*UP.*>" >/dev/null && echo lo-up',
    { network: 'none' },
  );
  t.deepEqual(none.stdout.trim().split('\n'), ['lo', 'lo-up'], 'only loopback, and it is up as in docker');
  const hostIfaces = readFileSync('/proc/net/dev', 'utf8')
    .trim()
    .split('\n')
    .slice(2)
    .map((l) => {
      const [name = ''] = l.split(':');
      return name.trim();
    })
    .sort();
  const host = await sh(store, base, 'cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d " "', { network: 'host' });
  t.deepEqual(host.stdout.trim().split('\n').sort(), hostIfaces);
  const files = await sh(store, base, 'hostname; grep -c localhost /etc/hosts; test -f /etc/resolv.conf && echo resolv');
  t.is(files.stdout, 'tsbuild\n2\nresolv\n');
});

test('a chain of 120 layers mounts through short links', async (t) => {
  const store = await Store.open(tempDir());
  const img = await makeBusyboxImage(store);
  const [baseLayer] = img.manifest.layers;
  if (!baseLayer) throw new Error('the busybox image has no layer');
  const layers = [{ descriptor: baseLayer, diffId: img.diffId }];
  for (let i = 0; i < 119; i++) {
    const body = Buffer.from(`layer ${i}\n`);
    const tar = Buffer.concat([
      encodeHeader({
        name: `layers/${String(i).padStart(3, '0')}-with-a-long-name-to-be-sure`,
        type: 'file',
        mode: 0o644,
        uid: 0,
        gid: 0,
        size: body.length,
        mtime: 1,
      }),
      body,
      Buffer.alloc(512 - body.length),
      Buffer.alloc(1024),
    ]);
    const blob = await store.blobs.put(tar);
    layers.push({ descriptor: { mediaType: MediaType.ociLayer, digest: blob.digest, size: blob.size }, diffId: digestOf(tar) as DiffID });
  }
  const top = await unpackImageLayers(store, await openSnapshots(store), layers);
  const chain = await (await openSnapshots(store)).chain(top!.chainId);
  t.is(chain.length, 120);
  t.true(chain.map((s) => s.diffDir).join(':').length > 4096, 'absolute lowerdirs would not fit in a mount option page');
  const r = await sh(store, top, 'ls /layers | wc -l; cat /layers/000-*; cat /layers/118-*; /bin/busybox true && echo base-visible');
  t.is(r.exitCode, 0, r.stderr);
  t.is(r.stdout, '119\nlayer 0\nlayer 118\nbase-visible\n');
});

test('FROM scratch: a step with no lowers runs a static binary bind-mounted in', async (t) => {
  const store = await Store.open(tempDir());
  const r = await sh(store, undefined, '', {
    args: ['/busybox', 'sh', '-c', '/busybox mkdir /made && /busybox echo scratch'],
    mounts: [{ type: 'bind', target: '/busybox', source: '/bin/busybox' }],
  });
  t.is(r.exitCode, 0, r.stderr);
  t.is(r.stdout, 'scratch\n');
  const c = await commitUpperDir(store, { upper: r.upper, lowers: [] });
  t.deepEqual(
    (await listLayer(store, c.descriptor)).map((e) => e.header.name),
    ['made/'],
    'the bind target stub is not in the layer',
  );
});

test.serial('failures leave no mounts, containers or run dirs behind', async (t) => {
  const { store, base } = await setup();
  const r = await sh(store, base, 'exit 3', { cwd: '/x' });
  t.is(r.exitCode, 3);
  await t.throwsAsync(sh(store, base, 'true', { user: 'nobody-here' }));
  await t.throwsAsync(sh(store, base, 'true', { mounts: [{ type: 'bind', target: '/src', source: '/does/not/exist' }] }));
  const r2 = await sh(store, base, '', { args: ['/not/an/executable'] });
  t.not(r2.exitCode, 0);
  const left = await leftovers(store.root, process.pid);
  t.deepEqual(left.mounts, []);
  t.deepEqual(left.containers, []);
  t.deepEqual(left.networks, []);
  t.deepEqual(
    left.dirs.filter((d) => !d.includes('/tmp-upper-')),
    [],
  );
  t.deepEqual(readdirSync(join(store.root, 'tmp')), []);
});

test.serial('an aborted step is killed and cleaned up', async (t) => {
  const { store, base } = await setup();
  const abort = new AbortController();
  const running = sh(store, base, 'echo started; sleep 300', {
    signal: abort.signal,
    onStdout: (d) => {
      if (d.toString().includes('started')) abort.abort();
    },
  });
  const r = await running;
  t.is(r.exitCode, 137);
  const left = await leftovers(store.root, process.pid);
  t.deepEqual([left.mounts, left.containers, left.networks], [[], [], []]);
});

test('a secret is readable in the step and never in the layer', async (t) => {
  const { store, base } = await setup();
  const secretFile = join(tempDir(), 'token');
  writeFileSync(secretFile, 'TOP-SECRET-VALUE');
  const r = await sh(store, base, 'cat /run/secrets/token; stat -c %a /run/secrets/token; cat /run/secrets/token > /dev/null && echo done > /result', {
    mounts: [{ type: 'secret', id: 'token', source: secretFile }],
  });
  t.is(r.exitCode, 0, r.stderr);
  t.is(r.stdout, 'TOP-SECRET-VALUE400\n');
  const lowers = (await (await openSnapshots(store)).chain(base.chainId)).map((s) => s.diffDir);
  const c = await commitUpperDir(store, { upper: r.upper, lowers, compression: 'none' });
  const entries = await listLayer(store, c.descriptor);
  t.deepEqual(
    entries.map((e) => e.header.name),
    ['result'],
  );
  t.false(readFileSync(store.blobFile(c.descriptor.digest)!).includes('TOP-SECRET-VALUE'));
  await t.throwsAsync(sh(store, base, 'true', { mounts: [{ type: 'secret', id: 'missing', source: '/no/such/secret' }] }), { message: /secret "missing"/ });
});

test('a cache mount persists across steps and stays out of layers; tmpfs is empty each time', async (t) => {
  const { store, base } = await setup();
  const mounts: SnapshotRunOptions['mounts'] = [
    { type: 'cache', target: '/root/.cache/tool', id: 'tool' },
    { type: 'tmpfs', target: '/scratch' },
  ];
  const first = await sh(store, base, 'echo 1 >> /root/.cache/tool/count; ls /scratch | wc -l; touch /scratch/x', { mounts });
  t.is(first.exitCode, 0, first.stderr);
  const second = await sh(store, base, 'cat /root/.cache/tool/count; ls /scratch | wc -l', { mounts });
  t.is(second.stdout, '1\n0\n');
  const locked = await sh(store, base, 'cat /c/count', { mounts: [{ type: 'cache', target: '/c', id: 'tool', sharing: 'locked' }] });
  t.is(locked.stdout, '1\n', 'same id, other target: same cache');
  const lowers = (await (await openSnapshots(store)).chain(base.chainId)).map((s) => s.diffDir);
  const c = await commitUpperDir(store, { upper: second.upper, lowers });
  t.true(c.emptyLayer, 'neither the cache target nor the tmpfs stub is in the layer');
});

test('bind mounts are read-only by default; read-write changes are discarded', async (t) => {
  const { store, base } = await setup();
  const src = tempDir();
  mkdirSync(join(src, 'sub'));
  writeFileSync(join(src, 'sub/in.txt'), 'from host');
  const ro = await sh(store, base, 'cat /src/sub/in.txt; echo x > /src/new', { mounts: [{ type: 'bind', target: '/src', source: src }] });
  t.not(ro.exitCode, 0);
  t.is(ro.stdout, 'from host');
  const rw = await sh(store, base, 'echo x > /src/new && rm /src/sub/in.txt && echo ok', {
    mounts: [{ type: 'bind', target: '/src', source: src, readwrite: true }],
  });
  t.is(rw.stdout, 'ok\n', rw.stderr);
  t.false(existsSync(join(src, 'new')));
  t.is(readFileSync(join(src, 'sub/in.txt'), 'utf8'), 'from host');
  t.deepEqual((await leftovers(store.root, process.pid)).mounts, []);
});

test('a step that swaps a stub parent for a symlink cannot make the stub cleanup touch the host', async (t) => {
  const { store, base } = await setup();
  const host = tempDir();
  mkdirSync(join(host, 'y/cache'), { recursive: true });
  const r = await sh(store, base, `mv /x /x-old && ln -s ${host} /x && echo swapped`, {
    mounts: [{ type: 'cache', target: '/x/y/cache', id: 'swap' }],
  });
  t.is(r.stdout, 'swapped\n', r.stderr);
  t.true(existsSync(join(host, 'y/cache')), 'the host dir the symlink points at is untouched');
});

test('cache sharing: locked waits for the holder, private gets its own dir while the cache is in use', async (t) => {
  const { store, base } = await setup();
  const cache = (sharing: 'locked' | 'private') => [{ type: 'cache' as const, target: '/c', id: `share-${sharing}`, sharing }];
  for (const sharing of ['locked', 'private'] as const) {
    let startedA!: () => void;
    const aStarted = new Promise<void>((r) => (startedA = r));
    const a = sh(store, base, 'echo a > /c/who; echo go; sleep 1; cat /c/who', {
      mounts: cache(sharing),
      onStdout: (d) => d.toString().includes('go') && startedA(),
    });
    await aStarted;
    const b = await sh(store, base, 'cat /c/who 2>/dev/null || echo none; echo b > /c/who', { mounts: cache(sharing) });
    const ra = await a;
    if (sharing === 'locked') {
      t.is(ra.exitCode, 0);
      t.is(b.stdout, 'a\n', 'locked: b ran after a released the cache, and saw its file');
    } else {
      t.is(b.stdout, 'none\n', 'private: b got a fresh dir while a held the cache');
    }
  }
});
