/**
 * End to end: tsbuild builds each fixture, the result is `docker load`ed into dockerd and compared with
 * the image docker's own (legacy) builder makes from the same Dockerfile: the filesystem (paths, types,
 * modes, owners, link targets, content hashes) and the config.
 */
import type { ExecutionContext } from 'ava';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { testWith } from './helpers/tools.js';
import { projectRoot } from './helpers/run.js';
import {
  dockerBuild,
  dockerRun,
  filesystemListing,
  imageConfig,
  loadBusyboxIntoDocker,
  removeImages,
  storeWithBusybox,
  tsbuildIntoDocker,
} from './helpers/build-compare.js';

const test = testWith(['runc', 'dockerd']);
const fixture = (name: string) => join(projectRoot, 'fixtures', name);

let root: string;
test.before(async () => {
  await loadBusyboxIntoDocker();
  root = await storeWithBusybox();
});

async function compare(t: ExecutionContext, name: string, extra: string[] = []) {
  const ours = `tsbuild-cmp-${name}:ts`;
  const theirs = `tsbuild-cmp-${name}:docker`;
  try {
    const built = await tsbuildIntoDocker(root, fixture(name), ours, extra);
    await dockerBuild(fixture(name), theirs, extra);
    const [a, b] = await Promise.all([filesystemListing(ours), filesystemListing(theirs)]);
    const onlyOurs = a.filter((l) => !b.includes(l));
    const onlyDocker = b.filter((l) => !a.includes(l));
    t.deepEqual({ onlyOurs, onlyDocker }, { onlyOurs: [], onlyDocker: [] }, 'filesystems differ');
    t.true(a.length > 100, 'the listing holds the whole rootfs');
    t.deepEqual(await imageConfig(ours), await imageConfig(theirs));
    return { ours, theirs, log: built.stderr };
  } finally {
    await removeImages(ours, theirs);
  }
}

test.serial('basic: ENV WORKDIR COPY RUN USER EXPOSE VOLUME LABEL STOPSIGNAL HEALTHCHECK ENTRYPOINT CMD match docker', async (t) => {
  const ours = 'tsbuild-cmp-basic-run:ts';
  await tsbuildIntoDocker(root, fixture('basic'), ours);
  try {
    const r = await dockerRun(ours);
    t.is(r.stdout, 'hello world\n');
  } finally {
    await removeImages(ours);
  }
  await compare(t, 'basic');
});

test.serial('COPY rules: slashes, wildcards, dir contents, parents, --chown, symlinks, .dockerignore match docker', async (t) => {
  await compare(t, 'copy-rules');
});

test.serial('whiteouts, opaque dirs, renames, hardlinks and metadata-only changes match docker', async (t) => {
  await compare(t, 'whiteouts');
});

test.serial('shell/exec forms, ARG/ENV expansion, SHELL, EXPOSE ranges, relative WORKDIR, HEALTHCHECK NONE match docker', async (t) => {
  await compare(t, 'forms', ['--build-arg', 'GREETING=hey']);
});

test.serial('multi-stage: COPY --from stage, index, image and scratch stage match docker; unneeded stages are skipped', async (t) => {
  const { log } = await compare(t, 'multistage');
  t.false(log.includes('[unused'), 'the unused stage did not run');
  t.regex(log, /\[builder 3\/3\] RUN/);
});

test.serial('ADD: tar, tar.gz, tar.bz2, tar.xz extracted; other files copied; URLs fetched with mode 0600', async (t) => {
  const server: Server = createServer((req, res) => {
    if (req.url === '/remote.txt') {
      res.writeHead(200, { 'last-modified': 'Wed, 01 Jan 2020 00:00:00 GMT', 'content-type': 'text/plain' });
      res.end('remote content\n');
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  try {
    await compare(t, 'add-archives', ['--build-arg', `URL=http://127.0.0.1:${port}`]);
  } finally {
    server.close();
  }
});

test.serial('USER by name, by ids and with groups for RUN; WORKDIR under a USER; COPY --chown after USER match docker', async (t) => {
  await compare(t, 'users');
});

test.serial('edge cases: ENV/ARG precedence, JSON-form COPY with spaces, exec-form RUN, unknown uid, empty CMD/ENTRYPOINT match docker', async (t) => {
  await compare(t, 'edge-cases');
});

test.serial('ONBUILD triggers run in the child build as in docker', async (t) => {
  const parent = 'onbuild-parent:latest';
  try {
    await tsbuildIntoDocker(root, fixture('onbuild-parent'), parent);
    const parentConfig = await imageConfig(parent);
    t.deepEqual(parentConfig.OnBuild, ['COPY message.txt /app/', 'RUN cat /app/message.txt > /app/seen']);
    const ours = 'tsbuild-cmp-onbuild-child:ts';
    await tsbuildIntoDocker(root, fixture('onbuild-child'), ours);
    const r = await dockerRun(ours);
    t.is(r.stdout, 'from the child context\nchild\n');
    await removeImages(ours, parent);
    await dockerBuild(fixture('onbuild-parent'), parent);
    await compare(t, 'onbuild-child');
  } finally {
    await removeImages(parent);
  }
});
