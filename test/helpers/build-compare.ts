import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import tar from 'tar-stream';
import { writeImageArchive } from '../../builder/image/index.js';
import { Store } from '../../store/index.js';
import { makeBusyboxImage } from './busybox-image.js';
import { run, tsbuild } from './run.js';
import { tempDir } from './temp.js';

export const DOCKER = '/usr/bin/docker';

async function docker(args: string[], env: Record<string, string> = {}): Promise<string> {
  const r = await run(DOCKER, args, { env: { ...process.env, ...env } });
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

let busyboxLoaded: Promise<void> | undefined;

/** Makes sure dockerd has the same busybox base tsbuild's fixture store has, as busybox:latest. */
export function loadBusyboxIntoDocker(): Promise<void> {
  busyboxLoaded ??= (async () => {
    const dir = tempDir('bb-docker-');
    const store = await Store.open(join(dir, 'store'));
    const image = await makeBusyboxImage(store, 'busybox:latest');
    const file = join(dir, 'busybox.tar');
    await writeImageArchive(
      store,
      [{ digest: image.digest, mediaType: image.manifest.mediaType!, size: image.manifestBytes.length, names: ['busybox:latest'] }],
      file,
      'docker',
    );
    await docker(['load', '-i', file]);
  })();
  return busyboxLoaded;
}

/** A store root with the busybox base named busybox:latest. */
export async function storeWithBusybox(): Promise<string> {
  const root = join(tempDir('tsbuild-root-'), 'root');
  await makeBusyboxImage(await Store.open(root), 'busybox:latest');
  return root;
}

/** Builds with tsbuild, then `docker load`s the result under `tag`. Returns the build's output. */
export async function tsbuildIntoDocker(root: string, context: string, tag: string, extra: string[] = []): Promise<{ stdout: string; stderr: string }> {
  const built = await tsbuild(root, ['build', '--progress', 'plain', '-t', tag, ...extra, context]);
  if (built.code !== 0) throw new Error(`tsbuild build failed (${built.code}):\n${built.stderr}`);
  const archive = join(tempDir('archive-'), 'image.tar');
  const saved = await tsbuild(root, ['save', '-o', archive, tag]);
  if (saved.code !== 0) throw new Error(`tsbuild save failed: ${saved.stderr}`);
  await docker(['load', '-i', archive]);
  return built;
}

/** docker's legacy builder (what dockerd 20.10 here runs) on the same context. */
export async function dockerBuild(context: string, tag: string, extra: string[] = []): Promise<void> {
  // Other test files share dockerd: make sure the base is (still) the fixture busybox.
  const inspect = await run(DOCKER, ['image', 'inspect', 'busybox:latest', '--format', '{{.Id}}']);
  if (inspect.code !== 0) {
    busyboxLoaded = undefined;
    await loadBusyboxIntoDocker();
  }
  await docker(['build', '-q', '--network', 'host', '-t', tag, ...extra, context], { DOCKER_BUILDKIT: '0' });
}

export async function removeImages(...tags: string[]): Promise<void> {
  await run(DOCKER, ['rmi', '-f', ...tags]);
}

/** One line per path of the image's filesystem: type, mode, owner, link target, content hash. */
export async function filesystemListing(image: string): Promise<string[]> {
  const id = (await docker(['create', '--network', 'none', image, '/bin/true'])).trim();
  try {
    const lines: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const child = spawn(DOCKER, ['export', id], { stdio: ['ignore', 'pipe', 'pipe'] });
      const extract = tar.extract();
      extract.on('entry', (h, stream, next) => {
        const hash = createHash('sha256');
        stream.on('data', (c: unknown) => void hash.update(c as Buffer));
        stream.on('end', () => {
          const name = '/' + h.name.replace(/^\.?\/*/, '').replace(/\/$/, '');
          // The container's own files docker adds at create time are not the image's.
          if (!/^\/(\.dockerenv|etc\/hosts|etc\/hostname|etc\/resolv\.conf|proc|sys|dev)(\/|$)/.test(name)) {
            const what =
              h.type === 'file' ? hash.digest('hex').slice(0, 16) : h.type === 'symlink' ? `-> ${h.linkname}` : h.type === 'link' ? `=> /${h.linkname}` : '';
            lines.push(`${name} ${h.type} ${(h.mode ?? 0).toString(8)} ${h.uid}:${h.gid} ${what}`.trimEnd());
          }
          next();
        });
        stream.resume();
      });
      extract.on('finish', resolve);
      extract.on('error', reject);
      child.stdout.pipe(extract);
      child.on('error', reject);
    });
    return lines.sort();
  } finally {
    await run(DOCKER, ['rm', '-f', id]);
  }
}

/** The config fields both builders must agree on, with null / [] / missing treated alike. */
export async function imageConfig(image: string): Promise<Record<string, unknown>> {
  const cfg = JSON.parse(await docker(['inspect', image, '--format', '{{json .Config}}'])) as Record<string, unknown>;
  const keys = ['Env', 'Cmd', 'Entrypoint', 'WorkingDir', 'User', 'ExposedPorts', 'Volumes', 'Labels', 'StopSignal', 'Healthcheck', 'OnBuild', 'Shell'];
  const out: Record<string, unknown> = {};
  for (const k of keys) {
    const v = cfg[k];
    if (
      v === null ||
      v === undefined ||
      v === '' ||
      (Array.isArray(v) && v.length === 0) ||
      (typeof v === 'object' && !Array.isArray(v) && Object.keys(v as object).length === 0)
    )
      continue;
    out[k] = v;
  }
  return out;
}

/** `docker run --rm --network none IMAGE ARGS...` → stdout. */
export async function dockerRun(image: string, args: string[] = [], runArgs: string[] = []): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return run(DOCKER, ['run', '--rm', '--network', 'none', ...runArgs, image, ...args]);
}

/** What both builders made of one context: filesystem listings and compared config fields. */
export interface BothBuilds {
  ours: string;
  theirs: string;
  onlyOurs: string[];
  onlyDocker: string[];
  /** Our image's listing (filesystemListing). */
  ourListing: string[];
  ourConfig: Record<string, unknown>;
  dockerConfig: Record<string, unknown>;
}

/**
 * Builds `context` with tsbuild (then `docker load`s it) and with docker's legacy builder, and lists
 * both images. The images stay in dockerd until `removeImages(result.ours, result.theirs)`.
 */
export async function buildBoth(root: string, context: string, name: string, extra: string[] = []): Promise<BothBuilds> {
  const ours = `tsbuild-cmp-${name}:ts`;
  const theirs = `tsbuild-cmp-${name}:docker`;
  await tsbuildIntoDocker(root, context, ours, extra);
  await dockerBuild(context, theirs, extra);
  const [a, b] = await Promise.all([filesystemListing(ours), filesystemListing(theirs)]);
  return {
    ours,
    theirs,
    onlyOurs: a.filter((l) => !b.includes(l)),
    onlyDocker: b.filter((l) => !a.includes(l)),
    ourListing: a,
    ourConfig: await imageConfig(ours),
    dockerConfig: await imageConfig(theirs),
  };
}
