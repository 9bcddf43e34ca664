import { promises as fs } from 'node:fs';
import { basename, isAbsolute, join, relative, resolve } from 'node:path';
import { digestOf, familiarReference, formatReference, parseNormalized, parsePlatform, type Digest, type Platform } from '../../oci/index.js';
import type { Store } from '../../store/index.js';
// the registry client (and the config parsers it brings) loads only when a build talks to a registry
import type { ProgressListener, RegistryClient, RegistrySettingsSources } from '../../registry/client/index.js';
import { BuildContext, contextDirProblem, defaultDockerfile, TreeChecksummer } from '../context/index.js';
import { onInterrupt, sweepLeftovers } from '../exec/index.js';
import {
  buildTimestamp,
  rememberBuiltImage,
  sourceDateEpoch,
  tagImage,
  withGzipLayers,
  withLayerEncoding,
  writeImage,
  writeImageArchive,
  writeOciDirectory,
  isFilesystemOutput,
  type BuildOutputSpec,
} from '../image/index.js';
import { openSnapshots } from '../snapshot/index.js';
import type { ProgressDisplay } from '../progress/index.js';
import { BaseResolver } from './base-image.js';
import { BuildCache } from './build-cache.js';
import { exportCache, importCache, inlineCacheConfig, INLINE_CACHE_KEY, type CacheExportSpec, type CacheImportSpec } from '../cache/index.js';
import { buildPlan, type Plan } from './plan.js';
import type { NamedContext, SecretSource } from './solve-context.js';
import { namedContextSubstitute } from './named-context.js';
import { byteNotes, pushNotes } from './step-bytes.js';
import { solve } from './solver.js';
import { BuildCancelledError, BuildStepError } from './errors.js';

export interface BuildOptions {
  store: Store;
  contextDir: string;
  /** Default `<context>/Dockerfile`. */
  dockerfile?: string;
  /** The Dockerfile's text when it does not come from a file (`-f -`). */
  dockerfileText?: string;
  tags: string[];
  /** `--annotation`: OCI annotations of the image manifest (BuildKit's `manifest:` ones, the default). */
  annotations?: Record<string, string>;
  /** `--add-host HOST:IP`: lines of every RUN container's /etc/hosts. */
  extraHosts?: Array<{ host: string; ip: string }>;
  /** `--ssh ID=SOCKET`: SSH agent sockets for RUN --mount=type=ssh. */
  ssh?: Map<string, string>;
  /** `--build-context NAME=DIR|docker-image://REF`. */
  namedContexts?: Map<string, NamedContext>;
  buildArgs?: Record<string, string>;
  target?: string;
  noCache?: boolean;
  pull?: boolean;
  push?: boolean;
  outputs?: BuildOutputSpec[];
  network?: 'host' | 'none';
  platform?: string;
  secrets?: SecretSource[];
  /** `--label K=V`: set on the image's config at export, as BuildKit's `label:` options (not part of the cache key). */
  labels?: Record<string, string>;
  /** `--cache-to`: where the build's cache is exported (builder/cache/spec.ts). */
  cacheTo?: CacheExportSpec[];
  /** `--cache-from`: caches asked after the local one; one that cannot be read is a warning. */
  cacheFrom?: CacheImportSpec[];
  /** `--no-cache-filter STAGE`: stages (names or indexes) built without the cache. */
  noCacheFilter?: string[];
  registry?: RegistrySettingsSources;
  progress: ProgressDisplay;
}

export interface BuildResult {
  /** Manifest digest. */
  digest: Digest;
  /** Config digest (the image id). */
  imageId: Digest;
  /** The manifest's media type and size (with `digest`: buildx's `containerimage.descriptor`). */
  mediaType: string;
  size: number;
  tags: string[];
}

/** `tsbuild build`: Dockerfile + context → image in the store, tagged, exported and pushed as asked. */
export async function build(options: BuildOptions): Promise<BuildResult> {
  const { store, progress } = options;
  // Bad names fail before the build, not after it.
  for (const t of options.tags) {
    const ref = parseNormalized(t);
    if (ref.digest) throw new Error(`-t ${t}: a tag must not contain a digest`);
  }
  const contextDir = resolve(options.contextDir);
  const notContext = await contextDirProblem(options.contextDir, contextDir);
  if (notContext) throw new Error(notContext);
  const dockerfilePath = options.dockerfile
    ? isAbsolute(options.dockerfile)
      ? options.dockerfile
      : resolve(options.dockerfile)
    : options.dockerfileText === undefined
      ? await defaultDockerfile(contextDir)
      : join(contextDir, 'Dockerfile');
  let text: string;
  if (options.dockerfileText !== undefined) text = options.dockerfileText;
  else {
    try {
      text = await fs.readFile(dockerfilePath, 'utf8');
    } catch {
      throw new Error(`cannot read the Dockerfile ${dockerfilePath}: pass -f FILE or put a Dockerfile in the context`);
    }
  }
  await sweepLeftovers(store).catch(() => undefined);
  const plan: Plan = buildPlan(text, {
    file:
      options.dockerfileText !== undefined
        ? 'Dockerfile'
        : dockerfilePath === join(contextDir, basename(dockerfilePath)) && /^[Dd]ockerfile$/.test(basename(dockerfilePath))
          ? basename(dockerfilePath)
          : relative(process.cwd(), dockerfilePath) || dockerfilePath,
    buildArgs: options.buildArgs ?? {},
    ...(options.target ? { target: options.target } : {}),
    ...(options.platform ? { platform: options.platform } : {}),
  });
  const platform: Platform | undefined = options.platform ? parsePlatform(options.platform) : undefined;
  if (platform && (platform.os !== 'linux' || platform.architecture !== (process.arch === 'x64' ? 'amd64' : process.arch))) {
    throw new Error(
      `--platform ${options.platform} cannot run on this ${process.arch} machine (no emulation); use linux/${process.arch === 'x64' ? 'amd64' : process.arch}`,
    );
  }
  for (const s of options.secrets ?? []) {
    if (s.src)
      await fs.access(s.src).catch(() => {
        throw new Error(`secret "${s.id}": file ${s.src} cannot be read`);
      });
  }
  let client: Promise<RegistryClient> | undefined;
  // base image pulls report their bytes to the steps that wait for them
  const pullWatchers = new Set<ProgressListener>();
  const getClient = () =>
    (client ??= import('../../registry/client/index.js').then(
      ({ RegistryClient, loadRegistrySettings }) =>
        new RegistryClient({
          settings: loadRegistrySettings(options.registry ?? {}),
          onProgress: (e) => {
            for (const w of pullWatchers) w(e);
          },
        }),
    ));
  const pullProgress = (name: string) => {
    const step = progress.step(`pulling ${name}`);
    const watcher = pushNotes(step, 'downloading');
    pullWatchers.add(watcher);
    return {
      done: (failed?: Error) => {
        pullWatchers.delete(watcher);
        if (failed) step.error(failed.message);
        else step.done();
      },
    };
  };
  const abort = new AbortController();
  // Ctrl-C / SIGTERM: the running steps are cancelled (their containers stopped) before cleanup runs
  const stopListening = onInterrupt((signal) => abort.abort(new BuildCancelledError(signal)));
  if (plan.unusedBuildArgs.length) progress.message(`[Warning] One or more build-args [${plan.unusedBuildArgs.join(' ')}] were not consumed`);
  // the store's own dirs (its overlay mounts among them) are never part of a context holding them
  const context = await BuildContext.open(contextDir, options.dockerfileText === undefined ? dockerfilePath : undefined, { leaveOut: [store.root] });
  // Content hashes of this context survive the build, so a rebuild need not read every file again.
  const hashesDir = join(await store.localDir('cache'), 'context-hashes');
  await fs.mkdir(hashesDir, { recursive: true });
  const checksummer = await TreeChecksummer.persistent(join(hashesDir, digestOf(context.dir).slice(7, 39)));
  const epoch = sourceDateEpoch();
  const created = buildTimestamp();
  const cache = await BuildCache.open(store);
  cache.warn = (m) => progress.message(`[Warning] ${m}`);
  for (const from of options.cacheFrom ?? []) {
    const label = from.type === 'registry' ? from.ref : from.src;
    const step = progress.step(`importing cache manifest from ${label}`);
    try {
      const imported = await importCache(store, from, getClient);
      cache.imported.push(imported);
      step.note(`${imported.size} records`);
      step.done();
    } catch (e) {
      // BuildKit: a cache that cannot be read is a warning; the build goes on without it
      step.done();
      progress.message(`[Warning] --cache-from ${label}: ${(e as Error).message.split('\n')[0]}; building without it`);
    }
  }
  const result = await solve(
    {
      store,
      snapshots: await openSnapshots(store),
      cache,
      plan,
      context,
      checksummer,
      bases: new BaseResolver({
        store,
        client: getClient,
        ...(platform ? { platform } : {}),
        pull: !!options.pull,
        pullProgress,
        ...(options.namedContexts?.size ? { substitute: namedContextSubstitute(store, options.namedContexts!, platform, sourceDateEpoch()) } : {}),
      }),
      progress,
      noCache: !!options.noCache,
      noCacheStages: new Set((options.noCacheFilter ?? []).map((s) => s.toLowerCase())),
      ...(platform ? { platform } : {}),
      network: options.network ?? 'host',
      secrets: new Map((options.secrets ?? []).map((s) => [s.id, s])),
      ...(options.ssh?.size ? { ssh: options.ssh } : {}),
      ...(options.extraHosts?.length ? { extraHosts: options.extraHosts } : {}),
      ...(options.namedContexts?.size ? { namedContexts: options.namedContexts } : {}),
      ...(epoch !== undefined ? { sourceDateEpoch: epoch } : {}),
      created,
      signal: abort.signal,
    },
    plan,
    abort,
  )
    .catch((e: unknown) => {
      if (e instanceof BuildStepError) e.dockerfileLines = plan.ast.lines;
      throw e;
    })
    .finally(() => {
      stopListening();
      return checksummer.save().catch(() => undefined);
    });

  const exportStep = progress.step('exporting to image');
  for (const [k, v] of Object.entries(options.labels ?? {})) result.image.setLabel(k, v);
  if (options.cacheTo?.some((c) => c.type === 'inline')) {
    exportStep.note('preparing layers for inline cache');
    (result.image.config as unknown as Record<string, unknown>)[INLINE_CACHE_KEY] = await inlineCacheConfig(store, result.image.layers, result.records);
  }
  let written = await writeImage(store, result.image, result.created, options.annotations);
  if (options.push) {
    // What goes to a registry carries gzip layers; the local names point at that same manifest.
    exportStep.note('compressing layers');
    written = await withGzipLayers(store, written.digest, 6, byteNotes(exportStep, 'compressing'));
  }
  exportStep.note(`writing image ${written.configDigest}`);
  await tagImage(store, written, options.tags);
  await rememberBuiltImage(store, written);
  for (const t of options.tags) exportStep.note(`naming to ${familiarReference(parseNormalized(t))}`);
  exportStep.done();

  for (const out of options.outputs ?? []) {
    if (isFilesystemOutput(out)) {
      const step = progress.step(
        `exporting the filesystem to ${out.type === 'local' ? 'directory' : 'tar'} ${out.dest === '-' ? 'standard output' : out.dest}`,
      );
      const { writeFilesystem } = await import('./filesystem-output.js');
      await writeFilesystem(await openSnapshots(store), result.top, out.dest === '-' ? out : { ...out, dest: resolve(out.dest) }, epoch);
      step.done();
      continue;
    }
    const step = progress.step(`exporting to ${out.type} ${out.directory ? 'layout' : 'archive'} ${out.dest}`);
    if (out.compression !== 'none') step.note(`compressing layers (${out.compression})`);
    const variant = await withLayerEncoding(store, written.digest, out.compression !== 'none' ? { ...out, onProgress: byteNotes(step, 'compressing') } : out);
    const images = [{ digest: variant.digest, mediaType: variant.mediaType, size: variant.size, names: out.names ?? options.tags }];
    const dest = out.dest === '-' ? '-' : resolve(out.dest);
    if (out.directory) await writeOciDirectory(store, images, dest);
    else await writeImageArchive(store, images, dest, out.type);
    step.done();
  }
  if (options.push) {
    for (const t of options.tags) {
      const step = progress.step(`pushing ${familiarReference(parseNormalized(t))}`);
      try {
        const client = await getClient();
        const { pushImage } = await import('../../registry/client/index.js');
        const before = client.onProgress;
        client.onProgress = pushNotes(step);
        const pushed = await pushImage(client, store, t).finally(() => {
          client.onProgress = before;
        });
        // buildx's line: the manifest digest the registry now has
        step.note(`pushing manifest for ${formatReference(parseNormalized(t))}@${pushed.digest}`);
      } catch (e) {
        step.error((e as Error).message);
        throw new Error(`pushing ${t} failed: ${(e as Error).message.split('\n')[0]}`);
      }
      step.done();
    }
  }
  for (const to of options.cacheTo ?? []) {
    if (to.type === 'inline') continue;
    const label = to.type === 'registry' ? to.ref : to.dest;
    const step = progress.step(`exporting cache to ${to.type === 'registry' ? 'registry' : 'local'} ${label} (mode=${to.mode})`);
    try {
      const records = to.mode === 'max' ? cache.seen : result.records;
      const what = await exportCache(
        store,
        to,
        {
          records,
          mounts: cache.mounts,
          emptyDir: await (await openSnapshots(store)).emptyLower(),
          ...(epoch !== undefined ? { sourceDateEpoch: epoch } : {}),
        },
        getClient,
      );
      step.note(what);
      step.done();
    } catch (e) {
      const message = `exporting the cache to ${label} failed: ${(e as Error).message.split('\n')[0]}`;
      if (!to.ignoreError) {
        step.error((e as Error).message);
        throw new Error(message);
      }
      // BuildKit's ignore-error=true: the image is built; the cache export failing is a warning
      step.note('failed; ignored (ignore-error=true)');
      step.done();
      progress.message(`[Warning] ${message}`);
    }
  }
  return { digest: written.digest, imageId: written.configDigest, mediaType: written.mediaType, size: written.size, tags: options.tags };
}
