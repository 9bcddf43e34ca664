/**
 * dockerd through the mirror (issue 12, "Done when"): scripts/services.sh starts dockerd with
 * `--registry-mirror http://127.0.0.1:5055`; this file runs the mirror on that port (reserved for it) in
 * front of a local distribution serving library/busybox. docker pulls and runs busybox, then, with the
 * upstream refusing connections, pulls the cached tag and digest again. docker.io is unreachable here, so
 * a pull that succeeds came through the mirror.
 *
 * The busybox pulled is the fixture plus a layer naming its upstream (its own image ID), under a tag of
 * its own: other tests' `busybox:latest` in dockerd is left alone.
 */
import { execFileSync } from 'node:child_process';
import { layoutProblems, mirrorOf, skopeoPull, startUpstream, MIRROR_IMPL, runFor, type RunningMirror, type Upstream } from './helpers/mirror-upstream.js';
import { testWith } from './helpers/tools.js';

const DOCKER = '/usr/bin/docker';
const MIRROR_PORT = 5055;
const tools = testWith(['dockerd', 'docker-registry', 'skopeo']);

/** dockerd's registry mirrors, or why they cannot be read. */
function dockerMirrors(): string[] {
  try {
    return JSON.parse(execFileSync(DOCKER, ['info', '--format', '{{json .RegistryConfig.Mirrors}}'], { encoding: 'utf8', timeout: 10_000 })) ?? [];
  } catch {
    return [];
  }
}

const mirrors = dockerMirrors();
const configured = mirrors.some((m) => m.replace(/\/$/, '') === `http://127.0.0.1:${MIRROR_PORT}`);
const missing = `dockerd runs without --registry-mirror http://127.0.0.1:${MIRROR_PORT} (has ${JSON.stringify(mirrors)}); restart it with scripts/services.sh`;
let test = tools.serial;
if (!configured) {
  if (process.env.CI) test = ((title: string) => tools(title, (t) => t.fail(missing))) as unknown as typeof test;
  else {
    console.warn(`skipping the mirror's docker tests: ${missing}`);
    test = tools.skip as unknown as typeof test;
  }
}

const TAG = `mirror-e2e-${process.pid}`;
let up: Upstream;
let mirror: RunningMirror;

async function docker(args: string[], deadlineMs = 120_000) {
  return runFor(DOCKER, args, deadlineMs);
}

test('docker pulls and runs busybox through the mirror; with the upstream refusing, the cached tag and digest pull again', async (t) => {
  up = await startUpstream({ busyboxTags: [TAG] });
  t.teardown(() => up.stop());
  try {
    // Tag TTL 0: every tag pull revalidates, so the pulls with the upstream refusing are stale serves.
    mirror = await mirrorOf(up, { port: MIRROR_PORT, tagTtlMs: 0 });
  } catch (e) {
    t.fail(`cannot run the mirror on 127.0.0.1:${MIRROR_PORT} (reserved for this test): ${(e as Error).message}`);
    return;
  }
  t.teardown(() => mirror.close());
  const byTag = `busybox:${TAG}`;
  const byDigest = `busybox@${up.busybox.digest}`;
  t.teardown(async () => {
    await docker(['rmi', '-f', byTag, byDigest]);
  });
  await docker(['rmi', '-f', byTag, byDigest]);

  const pull = await docker(['pull', byTag]);
  t.is(pull.code, 0, `docker pull ${byTag}: ${pull.stderr}${pull.stdout}`);
  t.regex(pull.stdout, new RegExp(up.busybox.digest), 'docker reports the upstream manifest digest');
  t.true(
    up.proxy.requests.some((r) => r.url === `/v2/library/busybox/manifests/${TAG}`),
    'the mirror asked the upstream for library/busybox',
  );
  const run = await docker(['run', '--rm', '--network', 'none', byTag, 'cat', '/etc/mirror-upstream']);
  t.is(run.code, 0, run.stderr);
  t.is(run.stdout.trim(), up.label, 'the container runs the upstream image');

  // docker skips layers it already has (the busybox rootfs other tests loaded): a skopeo pull caches
  // every blob of the image, so the skopeo pulls below have everything they need with the upstream gone.
  const warm = await skopeoPull(mirror.host, `library/busybox:${TAG}`, 60_000);
  t.is(warm.code, 0, `skopeo, upstream up: ${warm.stderr}`);

  await docker(['rmi', '-f', byTag]);
  await up.proxy.set({ refuse: true });
  const again = await docker(['pull', byTag], 60_000);
  t.is(again.code, 0, `docker pull of the cached tag with the upstream refusing: ${again.stderr}`);
  const digest = await docker(['pull', byDigest], 60_000);
  t.is(digest.code, 0, `docker pull of the cached digest with the upstream refusing: ${digest.stderr}`);
  const run2 = await docker(['run', '--rm', '--network', 'none', byDigest, 'cat', '/etc/mirror-upstream']);
  t.is(run2.code, 0, run2.stderr);
  t.is(run2.stdout.trim(), up.label);
  // skopeo, by tag and by digest, with the upstream still refusing.
  for (const ref of [`library/busybox:${TAG}`, `library/busybox@${up.busybox.digest}`]) {
    const s = await skopeoPull(mirror.host, ref, 60_000);
    t.is(s.code, 0, `skopeo ${ref}: ${s.stderr}`);
    if (s.code === 0) t.deepEqual(layoutProblems(s.dir, up.busybox), []);
  }
  // A tag never pulled fails (docker then tries docker.io, which is offline here) within its deadline.
  const never = await docker(['pull', 'busybox:never-pulled'], 90_000);
  t.not(never.code, 0);
  t.false(never.timedOut, 'docker pull of an uncached tag hung');
  t.log(`uncached tag, upstream refusing: ${never.stderr.trim()} (${(never.ms / 1000).toFixed(1)} s)`);
  t.log(`mirror: ${MIRROR_IMPL}`);
});
