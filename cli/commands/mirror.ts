import { resolve } from 'node:path';
import { buildPlan, DockerfileError } from '../../builder/frontend/index.js';
import { duration } from '../../config/index.js';
import { familiarReference, parseNormalized, parsePlatform, type Platform, type Reference } from '../../oci/index.js';
import { addPin, exportBundle, importBundle, MirrorSync, removePin, type SyncTarget } from '../../registry/index.js';
import { type Command, type CommandContext, listOption, stringOption, UsageError } from '../command.js';
import { formatSize } from '../format.js';
import { configuredUpstreams, mirrorStore, registryConfig, storeFlags, storeHelp } from '../mirror-options.js';
import { readDockerfile } from './build.js';
import { mirrorStatusCommand } from './mirror-status.js';

function references(ctx: CommandContext, usage: string): Reference[] {
  if (ctx.positionals.length === 0) throw new UsageError(`expected at least one image: tsbuild ${usage}`);
  return ctx.positionals.map((p) => parseNormalized(p));
}

/** The base images a Dockerfile names: every stage's FROM image and COPY --from / RUN --mount from= images. */
async function dockerfileTargets(file: string, buildArgs: Record<string, string>): Promise<SyncTarget[]> {
  const text = await readDockerfile(file);
  let plan;
  try {
    plan = buildPlan(text, { file: file === '-' ? 'Dockerfile' : file, buildArgs });
  } catch (e) {
    if (e instanceof DockerfileError) throw new Error(e.message);
    throw e;
  }
  const out = new Map<string, SyncTarget>();
  const add = (image: string, platform?: Platform) => {
    const reference = parseNormalized(image);
    const key = `${familiarReference(reference)} ${platform ? JSON.stringify(platform) : ''}`;
    if (!out.has(key)) out.set(key, { reference, ...(platform ? { platform } : {}) });
  };
  for (const stage of plan.stages) {
    if (stage.problem) throw new Error(stage.problem.message);
    if (stage.base.type === 'image') add(stage.base.ref, stage.platform);
    for (const image of stage.images) add(image);
  }
  return [...out.values()];
}

const syncCommand: Command = {
  name: 'sync',
  summary: 'Fill the mirror cache with images ahead of time (as pulls through the mirror would)',
  usage: 'mirror sync [--config FILE] [--mirror REG=URL]... [--platform OS/ARCH | --all-platforms] [-f Dockerfile [--build-arg K=V]...] [REF...]',
  help: [
    "  --mirror REG=URL     an upstream, as for tsbuild registry (adds to the config's mirrors:); repeatable",
    "  --platform OS/ARCH   the platform taken from an index (default: this machine's, linux/amd64 here)",
    '  --all-platforms      every manifest an index lists',
    '  -f, --file FILE      also every base image the Dockerfile names (FROM, COPY --from); - reads stdin',
    "  --build-arg K=V      ARG values for the Dockerfile's FROM lines",
    '  --timeout DURATION   how long to wait for an upstream answer (default 30s)',
    '  -q, --quiet          print nothing but errors',
    ...storeHelp,
    '',
    'References are normalized as docker does (busybox is docker.io/library/busybox:latest); the registry',
    'must be mirrored. Safe while a registry serves the same store.',
  ].join('\n'),
  options: {
    ...storeFlags,
    mirror: { type: 'string', multiple: true },
    platform: { type: 'string' },
    'all-platforms': { type: 'boolean' },
    file: { type: 'string', short: 'f' },
    'build-arg': { type: 'string', multiple: true },
    timeout: { type: 'string' },
    quiet: { type: 'boolean', short: 'q' },
  },
  async run(ctx) {
    const config = registryConfig(ctx);
    const upstreams = configuredUpstreams(ctx, config.config);
    const platformFlag = stringOption(ctx, 'platform');
    if (platformFlag && ctx.values['all-platforms']) throw new UsageError('--platform and --all-platforms exclude each other');
    let platform: Platform | undefined;
    try {
      platform = platformFlag ? parsePlatform(platformFlag) : undefined;
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    const timeout = stringOption(ctx, 'timeout');
    const parsedTimeout = timeout === undefined ? undefined : duration.safeParse(timeout);
    if (parsedTimeout && !parsedTimeout.success) throw new UsageError(`--timeout "${timeout}" is not a duration (use e.g. 30s, 2m)`);
    const timeoutMs = parsedTimeout?.data;
    const targets: SyncTarget[] = ctx.positionals.map((p) => ({ reference: parseNormalized(p) }));
    const dockerfile = stringOption(ctx, 'file');
    if (dockerfile) {
      const buildArgs: Record<string, string> = {};
      for (const a of listOption(ctx, 'build-arg')) {
        const eq = a.indexOf('=');
        if (eq === 0) throw new UsageError(`--build-arg "${a}" has no name: use --build-arg NAME=value`);
        if (eq < 0) {
          if (process.env[a] !== undefined) buildArgs[a] = process.env[a]!;
        } else buildArgs[a.slice(0, eq)] = a.slice(eq + 1);
      }
      const found = await dockerfileTargets(dockerfile, buildArgs);
      if (found.length === 0 && targets.length === 0) ctx.stderr.write(`tsbuild: ${dockerfile} names no base image (only scratch and stages)\n`);
      targets.push(...found);
    }
    if (targets.length === 0 && !dockerfile) throw new UsageError('expected images or -f Dockerfile: tsbuild mirror sync REF... | -f Dockerfile');
    if (upstreams.length === 0)
      throw new UsageError(
        'no upstream is mirrored: pass --mirror REGISTRY=URL (e.g. --mirror docker.io=https://registry-1.docker.io) or --config with a mirrors: section',
      );
    const store = await mirrorStore(ctx, config);
    const sync = new MirrorSync(store, upstreams, timeoutMs !== undefined ? { timeoutMs } : {});
    let failed = 0;
    try {
      for (const target of targets) {
        const name = familiarReference(target.reference);
        try {
          const r = await sync.sync(target, { ...(platform ? { platform } : {}), allPlatforms: ctx.values['all-platforms'] === true });
          if (r.stale) ctx.stderr.write(`tsbuild: warning: ${name}: the upstream did not answer; kept the digest cached before\n`);
          if (!ctx.values.quiet) {
            const platforms = r.platforms.length ? ` [${r.platforms.join(', ')}]` : '';
            ctx.stdout.write(
              `${name}: ${r.digest}${platforms}: ${r.blobs} blobs, ${formatSize(r.fetchedBytes)} fetched, ${formatSize(r.presentBytes)} already cached\n`,
            );
          }
        } catch (e) {
          failed++;
          ctx.stderr.write(`tsbuild: ${(e as Error).message.split('\n')[0]}\n`);
        }
      }
    } finally {
      await sync.close();
    }
    if (failed > 0) throw new Error(`${failed} of ${targets.length} image${targets.length === 1 ? '' : 's'} could not be synced`);
  },
};

const exportCommand: Command = {
  name: 'export',
  summary: 'Write cached images to a bundle (an OCI layout tar) to carry across an air gap',
  usage: 'mirror export -o BUNDLE.tar [--storage DIR] REF...',
  help: ['  -o, --output FILE    the bundle to write', ...storeHelp].join('\n'),
  options: { ...storeFlags, output: { type: 'string', short: 'o' }, quiet: { type: 'boolean', short: 'q' } },
  async run(ctx) {
    const output = stringOption(ctx, 'output');
    if (!output) throw new UsageError('missing -o FILE: tsbuild mirror export -o BUNDLE.tar REF...');
    const refs = references(ctx, 'mirror export -o BUNDLE.tar REF...');
    const store = await mirrorStore(ctx, registryConfig(ctx));
    const summary = await exportBundle(store, refs, resolve(output), (m) => ctx.stderr.write(`tsbuild: warning: ${m}\n`));
    if (!ctx.values.quiet) {
      for (const image of summary.images)
        ctx.stdout.write(`${image.reference}: ${image.digest}${image.platforms.length ? ` [${image.platforms.join(', ')}]` : ''}\n`);
      ctx.stdout.write(
        `wrote ${output}: ${summary.images.length} image${summary.images.length === 1 ? '' : 's'}, ${summary.blobs} blobs, ${formatSize(summary.bytes)}\n`,
      );
    }
  },
};

const importCommand: Command = {
  name: 'import',
  summary: 'Load a bundle from mirror export into the cache (digests verified)',
  usage: 'mirror import [--storage DIR] BUNDLE.tar',
  help: ['  -q, --quiet          print nothing', ...storeHelp].join('\n'),
  options: { ...storeFlags, quiet: { type: 'boolean', short: 'q' } },
  async run(ctx) {
    if (ctx.positionals.length !== 1) throw new UsageError('expected one bundle: tsbuild mirror import BUNDLE.tar');
    const store = await mirrorStore(ctx, registryConfig(ctx));
    const file = resolve(ctx.positionals[0]!);
    const summary = await importBundle(store, file);
    if (!ctx.values.quiet) {
      for (const image of summary.images) ctx.stdout.write(`${image.reference}: ${image.digest}\n`);
      ctx.stdout.write(
        `imported ${summary.images.length} image${summary.images.length === 1 ? '' : 's'}, ${summary.blobs} blobs, ${formatSize(summary.bytes)}\n`,
      );
    }
  },
};

const pinCommand: Command = {
  name: 'pin',
  summary: 'Keep cached images from eviction (a tag pin follows the tag)',
  usage: 'mirror pin [--storage DIR] REF...',
  help: storeHelp.join('\n'),
  options: { ...storeFlags },
  async run(ctx) {
    const refs = references(ctx, 'mirror pin REF...');
    const store = await mirrorStore(ctx, registryConfig(ctx));
    for (const ref of refs) {
      const added = await addPin(store.driver, ref);
      ctx.stdout.write(`${familiarReference(ref)}: ${added ? 'pinned' : 'already pinned'}\n`);
    }
  },
};

const unpinCommand: Command = {
  name: 'unpin',
  summary: 'Let pinned images be evicted again',
  usage: 'mirror unpin [--storage DIR] REF...',
  help: storeHelp.join('\n'),
  options: { ...storeFlags },
  async run(ctx) {
    const refs = references(ctx, 'mirror unpin REF...');
    const store = await mirrorStore(ctx, registryConfig(ctx));
    const missing: string[] = [];
    for (const ref of refs) {
      if (await removePin(store.driver, ref)) ctx.stdout.write(`${familiarReference(ref)}: unpinned\n`);
      else missing.push(familiarReference(ref));
    }
    if (missing.length > 0) throw new Error(`not pinned: ${missing.join(', ')} (see tsbuild mirror status)`);
  },
};

export const mirrorCommand: Command = {
  name: 'mirror',
  summary: "Manage the registry mirror's cache: sync, export, import, status, pin",
  usage: 'mirror SUBCOMMAND',
  help: 'The mirror itself is `tsbuild registry --mirror REGISTRY=URL`; these work on the store it serves, also while it runs.',
  subcommands: [syncCommand, exportCommand, importCommand, mirrorStatusCommand, pinCommand, unpinCommand],
};
