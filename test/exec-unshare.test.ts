import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { commitUpperDir, openSnapshots } from '../builder/snapshot/index.js';
import { runOnSnapshot, type SnapshotRunOptions } from '../builder/solver/overlay.js';
import { Store, type Snapshot } from '../store/index.js';
import { baseSnapshot, leftovers, listLayer } from './helpers/layers.js';
import { tempDir } from './helpers/temp.js';
import { testWith } from './helpers/tools.js';

// The fallback runtime for machines without runc, exercised here on a machine that has both.
const test = testWith(['unshare', 'ip', 'runc']);

async function sh(store: Store, lower: Snapshot, script: string, extra: Partial<SnapshotRunOptions> = {}) {
  const upper = await (await openSnapshots(store)).tempDir('upper');
  let stdout = '';
  let stderr = '';
  const { exitCode } = await runOnSnapshot(store, {
    runtime: 'unshare',
    lowers: lower.chainId,
    upperDir: upper,
    args: ['/bin/sh', '-c', script],
    network: 'none',
    onStdout: (d) => (stdout += d),
    onStderr: (d) => (stderr += d),
    ...extra,
  });
  return { exitCode, stdout, stderr, upper };
}

test.serial('unshare runtime: output, exit code, env, cwd, user, pid 1, isolated network with lo up', async (t) => {
  const store = await Store.open(tempDir());
  const base = await baseSnapshot(store);
  const r = await sh(
    store,
    base,
    'echo "$GREETING"; pwd; id; echo $$; cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d " "; ip link show lo | grep -c UP; exit 7',
    {
      env: ['GREETING=hi'],
      cwd: '/made/here',
      user: 'app',
    },
  );
  t.is(r.exitCode, 7, r.stderr);
  t.deepEqual(r.stdout.trim().split('\n'), ['hi', '/made/here', 'uid=1000(app) gid=1000(app)', '1', 'lo', '1']);
  const lowers = (await (await openSnapshots(store)).chain(base.chainId)).map((s) => s.diffDir);
  const layer = await commitUpperDir(store, { upper: r.upper, lowers });
  t.deepEqual(
    (await listLayer(store, layer.descriptor)).map((e) => e.header.name),
    ['made/', 'made/here/'],
    'no /proc /dev /sys /etc stubs',
  );
  t.deepEqual((await leftovers(store.root, process.pid)).mounts, []);
});

test.serial('unshare runtime: secret and cache mounts, nothing of them in the layer; abort kills the step', async (t) => {
  const store = await Store.open(tempDir());
  const base = await baseSnapshot(store);
  const secret = join(tempDir(), 's');
  writeFileSync(secret, 'SECRET');
  const mounts: SnapshotRunOptions['mounts'] = [
    { type: 'secret', id: 'tok', source: secret },
    { type: 'cache', target: '/cache', id: 'u' },
  ];
  const r = await sh(store, base, 'cat /run/secrets/tok; echo; echo 1 >> /cache/n; echo hi > /secret-free', { mounts });
  t.is(r.stdout, 'SECRET\n', r.stderr);
  const again = await sh(store, base, 'cat /cache/n; echo x > /run/secrets/tok 2>/dev/null || echo read-only', { mounts });
  t.is(again.stdout, '1\nread-only\n');
  const lowers = (await (await openSnapshots(store)).chain(base.chainId)).map((s) => s.diffDir);
  const layer = await commitUpperDir(store, { upper: r.upper, lowers });
  t.deepEqual(
    (await listLayer(store, layer.descriptor)).map((e) => e.header.name),
    ['secret-free'],
  );
  const abort = new AbortController();
  const aborted = await sh(store, base, 'echo started; sleep 300', { signal: abort.signal, onStdout: () => abort.abort() });
  t.is(aborted.exitCode, 137);
  t.deepEqual((await leftovers(store.root, process.pid)).mounts, []);
});

test('device nodes shipped in an image cannot open host devices (runc: device cgroup, unshare: nodev)', async (t) => {
  const store = await Store.open(tempDir());
  // 1:11 is /dev/kmsg: the host can open it, runc's default device list does not allow it
  const base = await baseSnapshot(store, [[{ name: 'evil-kmsg', type: 'character-device', devmajor: 1, devminor: 11, mode: 0o666 }]]);
  for (const runtime of ['runc', 'unshare'] as const) {
    const r = await sh(store, base, '( exec 3</evil-kmsg ) 2>/dev/null && echo opened || echo denied; head -c1 /dev/zero | wc -c', { runtime });
    t.is(r.stdout, 'denied\n1\n', `${runtime}: ${r.stderr}`);
  }
});
