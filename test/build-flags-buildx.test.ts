/**
 * The rest of the build flags docker and buildx users type: --annotation (BuildKit's manifest annotations;
 * index ones refused for one platform), --add-host (compared with docker's legacy builder), --build-context
 * (BuildKit's named contexts: a directory and docker-image://), --ssh (a real ssh-agent reached from a RUN
 * step), --load (into dockerd through its API), --push printing the pushed digest, buildx's no-op --rm and
 * --force-rm, the base image line with its digest, check warnings after a build, and --help.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { testWith } from './helpers/tools.js';
import { run, tsbuild } from './helpers/run.js';
import { tempDir } from './helpers/temp.js';
import { DOCKER, dockerBuild, dockerRun, loadBusyboxIntoDocker, removeImages, storeWithBusybox, tsbuildIntoDocker } from './helpers/build-compare.js';
import { startDistribution } from './helpers/distribution.js';

const test = testWith(['runc', 'dockerd', 'skopeo']);

async function context(dockerfile: string, files: Record<string, string> = {}): Promise<string> {
  const dir = tempDir('buildx-ctx-');
  await fs.writeFile(join(dir, 'Dockerfile'), dockerfile);
  for (const [name, body] of Object.entries(files)) {
    await fs.mkdir(join(dir, name, '..'), { recursive: true });
    await fs.writeFile(join(dir, name), body);
  }
  return dir;
}

async function ok(root: string, args: string[], options: Parameters<typeof tsbuild>[2] = {}) {
  const r = await tsbuild(root, args, options);
  if (r.code !== 0) throw new Error(`tsbuild ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r;
}

test('--annotation puts OCI annotations on the manifest (also in -o type=oci); index annotations are refused for one platform, as BuildKit', async (t) => {
  const root = await storeWithBusybox();
  const ctx = await context('FROM busybox\nRUN echo a > /a\n');
  const out = join(tempDir('buildx-out-'), 'image.tar');
  await ok(root, [
    'build',
    '-q',
    '-t',
    'annotated:v1',
    '--annotation',
    'org.opencontainers.image.title=Demo',
    '--annotation',
    'manifest:org.example.kind=test',
    '--annotation',
    'manifest[linux/arm64]:org.example.arm=only-there',
    '--annotation',
    'org.opencontainers.image.url=https://example.com/x',
    '-o',
    `type=oci,dest=${out}`,
    ctx,
  ]);
  const inspected = JSON.parse((await ok(root, ['inspect', 'annotated:v1'])).stdout) as { Manifest: { annotations?: Record<string, string> } };
  const want = { 'org.opencontainers.image.title': 'Demo', 'org.example.kind': 'test', 'org.opencontainers.image.url': 'https://example.com/x' };
  t.deepEqual(inspected.Manifest.annotations, want);
  const raw = await run('skopeo', ['inspect', '--raw', `oci-archive:${out}`]);
  t.is(raw.code, 0, raw.stderr);
  t.deepEqual((JSON.parse(raw.stdout) as { annotations?: Record<string, string> }).annotations, want);
  for (const bad of ['index:org.example.x=1', 'index-descriptor:org.example.x=1', 'novalue']) {
    const r = await tsbuild(root, ['build', '-q', '--annotation', bad, ctx]);
    t.is(r.code, 2, bad);
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    t.regex(r.stderr, /^tsbuild: --annotation/);
  }
});

test.serial('--add-host adds /etc/hosts lines to RUN steps, as docker build --add-host does', async (t) => {
  await loadBusyboxIntoDocker();
  const root = await storeWithBusybox();
  const ctx = await context('FROM busybox\nRUN grep -E "example|v6host" /etc/hosts > /hosts\nCMD ["cat", "/hosts"]\n');
  const flags = ['--add-host', 'db.example:10.1.2.3', '--add-host', 'cache.example:10.9.8.7', '--add-host', 'v6host:fd00::1'];
  await tsbuildIntoDocker(root, ctx, 'tsbuild-addhost:ts', flags);
  await dockerBuild(ctx, 'tsbuild-addhost:docker', flags);
  try {
    const ours = await dockerRun('tsbuild-addhost:ts');
    const theirs = await dockerRun('tsbuild-addhost:docker');
    t.is(ours.stdout, '10.1.2.3\tdb.example\n10.9.8.7\tcache.example\nfd00::1\tv6host\n');
    t.is(ours.stdout, theirs.stdout);
  } finally {
    await removeImages('tsbuild-addhost:ts', 'tsbuild-addhost:docker');
  }
  const bad = await tsbuild(root, ['build', '-q', '--add-host', 'nocolon', ctx]);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /^tsbuild: --add-host "nocolon": expected HOST:IP\n$/);
  const notIp = await tsbuild(root, ['build', '-q', '--add-host', 'h:999.1.1.1', ctx]);
  t.regex(notIp.stderr, /is not an IP address/);
});

test('--build-context NAME=DIR is FROM NAME and COPY --from=NAME; NAME=docker-image://REF stands in for an image (BuildKit)', async (t) => {
  const root = await storeWithBusybox();
  const extra = tempDir('named-dir-');
  await fs.mkdir(join(extra, 'sub'));
  await fs.writeFile(join(extra, 'sub', 'data.txt'), 'from the named context\n');
  await fs.writeFile(join(extra, 'top.txt'), 'top\n');
  const ctx = await context(
    [
      'FROM tools AS files',
      'FROM alpine:3.20',
      'COPY --from=tools /sub/data.txt /copied.txt',
      'COPY --from=files /top.txt /top.txt',
      'RUN --mount=type=bind,from=tools,target=/mnt cat /mnt/sub/data.txt > /mounted.txt',
      'RUN cat /copied.txt /top.txt /mounted.txt > /all.txt',
      '',
    ].join('\n'),
  );
  // alpine:3.20 is nowhere: the named context replaces it with the local busybox
  const r = await ok(root, [
    'build',
    '--progress',
    'plain',
    '-t',
    'named:v1',
    '--build-context',
    `tools=${extra}`,
    '--build-context',
    'alpine:3.20=docker-image://busybox:latest',
    ctx,
  ]);
  t.regex(r.stderr, /\[1\/5\] FROM docker\.io\/library\/busybox:latest@sha256:[a-f0-9]{64}/);
  const check = await context('FROM named:v1\nRUN cat /all.txt > /seen && printf "from the named context\\ntop\\nfrom the named context\\n" | cmp - /seen\n');
  await ok(root, ['build', '-q', check]);
  for (const [spec, msg] of [
    ['tools=https://example.com/x.tar', /https contexts are not supported/],
    ['tools=/no/such/dir', /no such directory/],
    ['=x', /expected NAME=DIR/],
  ] as const) {
    const bad = await tsbuild(root, ['build', '-q', '--build-context', spec, ctx]);
    t.is(bad.code, 2, `${spec}: ${bad.stderr}`);
    t.regex(bad.stderr, msg);
  }
});

test('--ssh forwards an ssh-agent to RUN --mount=type=ssh at $SSH_AUTH_SOCK (ssh-add -l inside the step lists the key)', async (t) => {
  if (!(await fs.stat('/usr/bin/ssh-agent').catch(() => undefined))) return t.pass('openssh-client is not installed');
  const dir = tempDir('ssh-');
  const sock = join(dir, 'agent.sock');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'tsbuild-test-key', '-f', join(dir, 'key')]);
  const agent: ChildProcess = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
  try {
    for (let i = 0; i < 50 && !(await fs.stat(sock).catch(() => undefined)); i++) await new Promise((r) => setTimeout(r, 100));
    execFileSync('ssh-add', [join(dir, 'key')], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: 'ignore' });
    // the step runs the host's ssh-add through the host's loader, brought in as a bind mount of the context
    const ctx = await context(
      'FROM busybox\nRUN --mount=type=bind,target=/t --mount=type=ssh /t/ld.so --library-path /t /t/ssh-add -l > /keys; echo "sock=$SSH_AUTH_SOCK" >> /keys\n',
    );
    const libs = execFileSync('ldd', ['/usr/bin/ssh-add'], { encoding: 'utf8' })
      .split('\n')
      .map((l) => /(\/\S+) \(/.exec(l)?.[1])
      .filter((p): p is string => !!p);
    for (const lib of libs) await fs.copyFile(lib, join(ctx, lib.includes('ld-linux') ? 'ld.so' : lib.split('/').pop()!));
    await fs.copyFile('/usr/bin/ssh-add', join(ctx, 'ssh-add'));
    const root = await storeWithBusybox();
    const r = await ok(root, ['build', '-q', '-t', 'ssh:v1', '--ssh', `default=${sock}`, ctx]);
    const oci = join(tempDir('ssh-out-'), 'keys');
    await ok(root, ['build', '-q', '-t', 'ssh:v1', '--ssh', 'default', '-o', `type=oci,dest=${oci}.tar`, ctx], {
      env: { ...process.env, SSH_AUTH_SOCK: sock },
    });
    t.regex(r.stdout, /^sha256:/);
    const show = await context(
      'FROM ssh:v1\nRUN cat /keys >&2 && grep -q "tsbuild-test-key (ED25519)" /keys && grep -qx "sock=/run/buildkit/ssh_agent.0" /keys\n',
    );
    const shown = await tsbuild(root, ['build', '--progress', 'plain', show]);
    t.is(shown.code, 0, shown.stderr);
    const noAgent = await tsbuild(root, ['build', '-q', '--ssh', 'default', ctx], { env: { ...process.env, SSH_AUTH_SOCK: '' } });
    t.is(noAgent.code, 2);
    t.regex(noAgent.stderr, /^tsbuild: --ssh default: SSH_AUTH_SOCK is not set/);
    const keyFile = await tsbuild(root, ['build', '-q', '--ssh', `default=${join(dir, 'key')}`, ctx]);
    t.regex(keyFile.stderr, /is not an agent socket/);
  } finally {
    agent.kill();
  }
});

test.serial('--load puts the image into dockerd through its API; -o type=docker without dest is the same, as buildx', async (t) => {
  const root = await storeWithBusybox();
  const ctx = await context('FROM busybox\nRUN echo loaded > /msg\nCMD ["cat", "/msg"]\n');
  await removeImages('tsbuild-load:v1', 'tsbuild-load:v2');
  try {
    const r = await ok(root, ['build', '--progress', 'plain', '--load', '--rm', '--force-rm', '-t', 'tsbuild-load:v1', ctx]);
    t.regex(r.stderr, /Loaded image: tsbuild-load:v1/);
    t.is((await dockerRun('tsbuild-load:v1')).stdout, 'loaded\n');
    const id = (await run(DOCKER, ['image', 'inspect', '--format', '{{.Id}}', 'tsbuild-load:v1'])).stdout.trim();
    t.is(id, r.stdout.trim(), 'dockerd has the image under the id tsbuild printed');
    await ok(root, ['build', '-q', '-o', 'type=docker', '-t', 'tsbuild-load:v2', ctx]);
    t.is((await dockerRun('tsbuild-load:v2')).stdout, 'loaded\n');
  } finally {
    await removeImages('tsbuild-load:v1', 'tsbuild-load:v2');
  }
});

test.serial('--push prints the pushed manifest digest, the one the registry serves; compression, pushes and base pulls show their bytes', async (t) => {
  const registry = await startDistribution();
  try {
    const root = await storeWithBusybox();
    // 24 MB that gzip cannot shrink: compressing and pushing it take long enough to be shown as they go
    const ctx = await context('FROM busybox\nRUN head -c 24000000 /dev/urandom > /big && echo pushed > /p\n');
    const target = `${registry.host}/flags/pushed:v1`;
    const r = await ok(root, ['build', '--progress', 'plain', '--push', '-t', target, ctx]);
    t.regex(r.stderr, /#\d+ compressing sha256:[a-f0-9]{64} [\d.]+[kM]B \/ 24\.\dMB\n/, 'compression shows bytes while it runs');
    t.regex(r.stderr, /#\d+ compressing sha256:[a-f0-9]{64} 24\.\dMB \/ 24\.\dMB done/);
    t.regex(r.stderr, /#\d+ pushing layer sha256:[a-f0-9]{64} [\d.]+[kM]B \/ 2\d\.\dMB( done)?\n/);
    // tsbuild push of an image with uncompressed layers shows its compression too
    const local = await ok(root, ['build', '-q', '-t', 'push-cli:v1', await context('FROM busybox\nRUN head -c 3000000 /dev/urandom > /mid\n')]);
    t.regex(local.stdout, /^sha256:/);
    const pushedCli = await ok(root, ['push', 'push-cli:v1', `${registry.host}/flags/push-cli:v1`]);
    t.regex(pushedCli.stderr, /[a-f0-9]{12}: Compressing 3\.\d+MB\/3\.\d+MB\n/);
    // a base pulled by a build shows its bytes under a step of its own
    const fresh = join(tempDir('buildx-pull-'), 'root');
    const pulledBuild = await ok(fresh, ['build', '--progress', 'plain', await context(`FROM ${registry.host}/flags/push-cli:v1\nRUN test -s /mid\n`)]);
    t.regex(pulledBuild.stderr, new RegExp(`#\\d+ pulling ${registry.host.replace(/\./g, '\\.')}/flags/push-cli:v1\n`));
    t.regex(pulledBuild.stderr, /#\d+ downloading sha256:[a-f0-9]{64} [\d.]+[kM]B \/ [\d.]+MB done/);
    const printed = /pushing manifest for (\S+)@(sha256:[a-f0-9]{64})/.exec(r.stderr);
    t.truthy(printed, r.stderr);
    const [, printedRef, printedDigest] = printed ?? [];
    t.is(printedRef, target);
    const remote = await run('skopeo', ['inspect', '--tls-verify=false', `docker://${target}`]);
    t.is((JSON.parse(remote.stdout) as { Digest?: string }).Digest, printedDigest);
  } finally {
    await registry.stop();
  }
});

test('the base image line shows the expanded name and its digest; check warnings follow a build that succeeded, as BuildKit', async (t) => {
  const root = await storeWithBusybox();
  const ctx = await context('ARG BASE=busybox\nFROM ${BASE} as base\nRUN true\nCMD echo hi\n');
  const r = await ok(root, ['build', '--progress', 'plain', '-t', 'lines:v1', ctx]);
  const digest = JSON.parse((await ok(root, ['inspect', 'busybox'])).stdout).Digest as string;
  t.regex(r.stderr, /#\d+ \[internal\] load metadata for docker\.io\/library\/busybox:latest/);
  t.true(r.stderr.includes(`[base 1/3] FROM docker.io/library/busybox:latest@${digest}`), r.stderr);
  t.false(r.stderr.includes('FROM ${BASE}'));
  t.regex(r.stderr, /2 warnings found/);
  t.regex(r.stderr, / - FromAsCasing: .*\(line 2\)/);
  t.regex(r.stderr, / - JSONArgsRecommended: .*\(line 4\)/);
  const quiet = await ok(root, ['build', '-q', ctx]);
  t.false(quiet.stderr.includes('warning'), 'quiet prints only the id');
});

test("build --help lists the new flags; buildx's --rm and --force-rm are accepted", async (t) => {
  const help = await tsbuild(tempDir('help-root-'), ['build', '--help']);
  for (const flag of ['--annotation', '--add-host', '--build-context', '--ssh', '--load', '--rm', '--force-rm', '--iidfile', '--metadata-file', '--label']) {
    t.true(help.stdout.includes(flag), flag);
  }
});
