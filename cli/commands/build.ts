import fs from 'node:fs/promises';
import path from 'node:path';
// Only what a no-op rebuild needs loads up front; the builder, the store and the flag helpers load when a
// build runs (a no-op rebuild is answered from builder/cache/noop.ts: process start plus a stat of the context).
import { parseCacheFrom, parseCacheTo } from '../../builder/cache/spec.js';
import { cachedOnRebuild, noopCheck, recordingProgress, rememberNoop, type NoopRecord, type NoopRequest, type NoopSnapshot } from '../../builder/cache/noop.js';
import { contextDirProblem, defaultDockerfile } from '../../builder/context/dockerfile-name.js';
import { createProgress } from '../../builder/progress/index.js';
import type { BuildResult, SecretSource } from '../../builder/solver/index.js';
import { formatReference, parseNormalized } from '../../oci/reference.js';
// the file, not the store's index: a no-op rebuild loads this module and must stay small
import { errnoReason } from '../../store/errno.js';
import { type Command, type CommandContext, UsageError, listOption, stringOption } from '../command.js';

/** Everything `tsbuild build` was asked to do, flags parsed; the builder consumes this. */
export interface BuildRequest {
  /** Build context directory. */
  context: string;
  /** Dockerfile path as given (default CONTEXT/Dockerfile); `-` reads standard input. */
  dockerfile: string;
  buildArgs: Record<string, string>;
  target?: string | undefined;
  tags: string[];
  check: boolean;
  noCache: boolean;
  pull: boolean;
  push: boolean;
  outputs: string[];
  progress?: string | undefined;
  network?: string | undefined;
  platform?: string | undefined;
  secrets: string[];
  registryMirrors: string[];
  insecureRegistries: string[];
  labels: Record<string, string>;
  /** `--annotation`, `--add-host`, `--ssh`, `--build-context` as given (parsed in runBuild). */
  annotations: string[];
  addHosts: string[];
  ssh: string[];
  buildContexts: string[];
  /** `--load` (or `-o type=docker` without dest, as buildx): the image goes into dockerd. */
  load: boolean;
  iidfile?: string | undefined;
  metadataFile?: string | undefined;
  /** `--cache-to`, `--cache-from` (specs as given), `--no-cache-filter` stages. */
  cacheTo: string[];
  cacheFrom: string[];
  noCacheFilter: string[];
}

export function parseBuildRequest(ctx: CommandContext): BuildRequest {
  for (const flag of ['provenance', 'sbom']) {
    const value = stringOption(ctx, flag);
    // CI scripts turn attestations off; tsbuild makes none, so that is what it does anyway
    if (value === undefined || /^(false|0)$/i.test(value.trim())) continue;
    throw new UsageError(`--${flag}=${value} is not supported: tsbuild makes no attestations (--${flag}=false is accepted)`);
  }
  if (ctx.positionals.length > 1) throw new UsageError(`expected one build context, got ${ctx.positionals.length}: tsbuild build [FLAGS] CONTEXT`);
  const context = ctx.positionals[0] ?? '.';
  const buildArgs: Record<string, string> = {};
  for (const a of listOption(ctx, 'build-arg')) {
    const eq = a.indexOf('=');
    if (eq === 0) throw new UsageError(`--build-arg "${a}" has no name: use --build-arg NAME=value`);
    if (eq < 0) {
      // `--build-arg NAME` takes the value from the environment, as docker does.
      const value = process.env[a];
      if (value !== undefined) buildArgs[a] = value;
    } else buildArgs[a.slice(0, eq)] = a.slice(eq + 1);
  }
  const labels: Record<string, string> = {};
  for (const l of listOption(ctx, 'label')) {
    const eq = l.indexOf('=');
    if (eq === 0) throw new UsageError(`--label "${l}" has no name: use --label NAME=value`);
    // docker: `--label NAME` alone sets an empty value
    labels[eq < 0 ? l : l.slice(0, eq)] = eq < 0 ? '' : l.slice(eq + 1);
  }
  return {
    context,
    dockerfile: stringOption(ctx, 'file') ?? (context === '-' ? '' : path.join(context, 'Dockerfile')),
    buildArgs,
    target: stringOption(ctx, 'target'),
    tags: listOption(ctx, 'tag'),
    check: ctx.values.check === true,
    noCache: ctx.values['no-cache'] === true,
    pull: ctx.values.pull === true,
    push: ctx.values.push === true,
    outputs: listOption(ctx, 'output').filter((o) => o.trim() !== 'type=docker'),
    progress: stringOption(ctx, 'progress'),
    network: stringOption(ctx, 'network'),
    platform: stringOption(ctx, 'platform'),
    secrets: listOption(ctx, 'secret'),
    registryMirrors: listOption(ctx, 'registry-mirror'),
    insecureRegistries: listOption(ctx, 'insecure-registry'),
    labels,
    annotations: listOption(ctx, 'annotation'),
    addHosts: listOption(ctx, 'add-host'),
    ssh: listOption(ctx, 'ssh'),
    buildContexts: listOption(ctx, 'build-context'),
    load: ctx.values.load === true || listOption(ctx, 'output').some((o) => o.trim() === 'type=docker'),
    iidfile: stringOption(ctx, 'iidfile'),
    metadataFile: stringOption(ctx, 'metadata-file'),
    cacheTo: listOption(ctx, 'cache-to'),
    cacheFrom: listOption(ctx, 'cache-from'),
    noCacheFilter: listOption(ctx, 'no-cache-filter')
      .flatMap((s) => s.split(','))
      .filter(Boolean),
  };
}

export async function readDockerfile(file: string): Promise<string> {
  if (file === '-') {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }
  try {
    return await fs.readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new Error(`cannot read Dockerfile ${file}: no such file (use -f to point at it)`);
    throw new Error(`cannot read Dockerfile ${file}: ${(e as Error).message}`);
  }
}

/** `--check`: lint and evaluate without building; exit 1 when there is anything to report. */
async function runCheck(req: BuildRequest, ctx: CommandContext): Promise<number> {
  const text = await readDockerfile(req.dockerfile);
  const shown = req.dockerfile === '-' ? 'Dockerfile' : path.relative(process.cwd(), req.dockerfile) || req.dockerfile;
  const { checkDockerfile } = await import('../../builder/frontend/index.js');
  const problems = checkDockerfile(text, {
    file: shown,
    buildArgs: req.buildArgs,
    ...(req.target !== undefined ? { target: req.target } : {}),
    ...(req.platform !== undefined ? { platform: req.platform } : {}),
  });
  if (problems.length === 0) {
    ctx.stdout.write('Check complete, no warnings found.\n');
    return 0;
  }
  for (const p of problems) ctx.stdout.write(`${p.file}:${p.line}: ${p.rule}: ${p.message}\n`);
  const errors = problems.filter((p) => p.severity === 'error').length;
  const warnings = problems.length - errors;
  ctx.stderr.write(
    `Check complete, ${[errors && `${errors} error${errors > 1 ? 's' : ''}`, warnings && `${warnings} warning${warnings > 1 ? 's' : ''}`].filter(Boolean).join(' and ')} found.\n`,
  );
  return 1;
}

export const buildCommand: Command = {
  name: 'build',
  summary: 'Build an image from a Dockerfile (--check: only evaluate it)',
  usage:
    'build [-t REF]... [-f FILE|-] [--build-arg K=V]... [--target STAGE] [--no-cache] [--pull] [--push] [--load] [--output SPEC] [--progress auto|plain|tty] [--network none|host] [--platform linux/amd64] [--secret id=..,src=..] [--ssh default|ID=SOCKET] [--label K=V] [--annotation K=V] [--add-host HOST:IP] [--build-context NAME=DIR|docker-image://REF] [--iidfile FILE] [--metadata-file FILE] [--check] CONTEXT|-',
  help: [
    '  -f, --file PATH            Dockerfile (default CONTEXT/Dockerfile, or CONTEXT/dockerfile; - reads stdin)',
    '  --build-arg K=V            set a build argument (repeatable; K alone takes it from the environment)',
    '  --target STAGE             build this stage and only the stages it needs',
    '  --check                    evaluate the Dockerfile and report problems without building',
    '  -t, --tag REF              name the result (repeatable)',
    '  --no-cache                 build every step again (the cache is still refreshed)',
    "  --no-cache-filter STAGE    build these stages' steps again (repeatable or comma-separated)",
    '  --cache-to SPEC            export the build cache (repeatable): type=registry,ref=REF[,mode=min|max],',
    '                             type=local,dest=DIR[,mode=min|max], type=inline (in the pushed image); options',
    '                             compression=gzip|zstd|uncompressed, compression-level=N, ignore-error=true',
    '  --cache-from SPEC          import a build cache (repeatable): type=registry,ref=REF (a cache or an image',
    '                             with an inline cache), type=local,src=DIR; an unreadable one is a warning',
    '  --pull                     ask the registry for base images even when the store has them',
    '  --push                     push every -t name to its registry after the build',
    "  -o, --output SPEC          type=local,dest=DIR or DIR alone (the final stage's files), type=tar[,dest=FILE|-]",
    '                             (them as a tar; - or no dest: standard output), or an image: type=oci,dest=DIR|FILE.tar',
    '                             or type=docker,dest=FILE.tar (repeatable); image options',
    '                             compression=gzip|zstd|uncompressed, compression-level=N, force-compression=true,',
    '                             oci-mediatypes=true|false, tar=false, name=REF',
    '  --progress MODE            auto (default), plain (one line per event) or tty (live display)',
    '  -q, --quiet                print only the image id',
    '  --iidfile FILE             write the image id to FILE',
    "  --metadata-file FILE       write buildx's result JSON to FILE (containerimage.digest, .config.digest, image.name)",
    '  --label K=V                set a label on the image (repeatable)',
    '  --annotation K=V           an OCI annotation on the image manifest (repeatable; also manifest:K=V,',
    '                             manifest[linux/amd64]:K=V; index: ones are refused for a one-platform build, as BuildKit)',
    '  --add-host HOST:IP         a line in the /etc/hosts of RUN steps (repeatable)',
    '  --build-context NAME=DIR   a named context: FROM NAME and COPY --from=NAME read DIR (or NAME=docker-image://REF:',
    '                             that image stands in for NAME) (repeatable)',
    '  --ssh default|ID=SOCKET    an SSH agent socket for RUN --mount=type=ssh (default: $SSH_AUTH_SOCK) (repeatable)',
    '  --load                     load the image into dockerd through its API (also -o type=docker without dest)',
    '  --rm, --force-rm           accepted for docker compatibility (RUN containers are always removed)',
    '  --provenance=false, --sbom=false  accepted (tsbuild makes no attestations; =true or mode=… is refused)',
    '  CONTEXT                    a directory, or - for a tar (or just a Dockerfile) on standard input;',
    '                             -f - reads the Dockerfile from standard input; -o ...,dest=- writes the tar to stdout',
    '  --network MODE             host (default, like docker build) or none for RUN steps',
    "  --platform linux/amd64     target platform (this machine's only; no emulation)",
    '  --secret id=ID,src=FILE    a secret for RUN --mount=type=secret (also id=ID,env=VAR)',
    "  --registry-mirror URL      mirror for docker.io pulls (repeatable; before the config file's and daemon.json's)",
    '  --insecure-registry HOST   registry spoken to over plain HTTP / unverified TLS (repeatable)',
  ].join('\n'),
  options: {
    file: { type: 'string', short: 'f' },
    'build-arg': { type: 'string', multiple: true },
    target: { type: 'string' },
    check: { type: 'boolean' },
    tag: { type: 'string', short: 't', multiple: true },
    'no-cache': { type: 'boolean' },
    'no-cache-filter': { type: 'string', multiple: true },
    'cache-to': { type: 'string', multiple: true },
    'cache-from': { type: 'string', multiple: true },
    pull: { type: 'boolean' },
    push: { type: 'boolean' },
    output: { type: 'string', short: 'o', multiple: true },
    progress: { type: 'string' },
    network: { type: 'string' },
    platform: { type: 'string' },
    secret: { type: 'string', multiple: true },
    'registry-mirror': { type: 'string', multiple: true },
    'insecure-registry': { type: 'string', multiple: true },
    quiet: { type: 'boolean', short: 'q' },
    iidfile: { type: 'string' },
    'metadata-file': { type: 'string' },
    label: { type: 'string', multiple: true },
    annotation: { type: 'string', multiple: true },
    'add-host': { type: 'string', multiple: true },
    'build-context': { type: 'string', multiple: true },
    ssh: { type: 'string', multiple: true },
    load: { type: 'boolean' },
    rm: { type: 'boolean' },
    'force-rm': { type: 'boolean' },
    provenance: { type: 'string' },
    sbom: { type: 'string' },
  },
  async run(ctx) {
    const req = parseBuildRequest(ctx);
    if (req.context !== '-') {
      const problem = await contextDirProblem(req.context, path.resolve(req.context));
      if (problem) {
        // a URL or git context is not a missing directory: the build's refusal says what to do instead
        await (await import('../build-flags.js')).refuseRemoteContext(req.context);
        throw new Error(problem);
      }
      if (stringOption(ctx, 'file') === undefined) req.dockerfile = await defaultDockerfile(req.context);
    }
    if (req.check) return runCheck(req, ctx);
    const noop = noopRequest(req, ctx);
    const earlier = noop ? await noopCheck(noop) : undefined;
    if (earlier?.hit) return replayNoop(req, ctx, earlier.hit);
    const { holdExitFor } = await import('../../builder/exec/index.js');
    const work = runBuild(req, ctx, noop && earlier?.snapshot ? { request: noop, before: earlier.snapshot } : undefined);
    // after Ctrl-C the process ends once the build has said how it ended (the error is printed a tick later)
    holdExitFor(work.catch(() => new Promise((r) => setImmediate(r))));
    return work;
  },
};

function parseSecret(spec: string): SecretSource {
  const fields = new Map<string, string>();
  for (const part of spec.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) throw new UsageError(`--secret "${spec}": expected id=ID,src=FILE (or env=VAR)`);
    fields.set(part.slice(0, eq), part.slice(eq + 1));
  }
  const id = fields.get('id');
  if (!id) throw new UsageError(`--secret "${spec}": id=ID is required`);
  const src = fields.get('src') ?? fields.get('source');
  const env = fields.get('env');
  if (!src && env === undefined) {
    if (process.env[id] !== undefined) return { id, env: id };
    throw new UsageError(`--secret "${spec}": give src=FILE or env=VAR`);
  }
  return { id, ...(src ? { src: path.resolve(src) } : {}), ...(env !== undefined ? { env } : {}) };
}

/** buildx's `--metadata-file` document for an image build. */
export function buildMetadata(result: BuildResult): Record<string, unknown> {
  return {
    'containerimage.config.digest': result.imageId,
    'containerimage.descriptor': { mediaType: result.mediaType, digest: result.digest, size: result.size },
    'containerimage.digest': result.digest,
    ...(result.tags.length ? { 'image.name': result.tags.map((t) => formatReference(parseNormalized(t))).join(',') } : {}),
  };
}

/** `--iidfile` (the id without a newline, as docker writes it) and `--metadata-file`; a failure names the flag and file. */
async function writeResultFiles(req: BuildRequest, result: BuildResult): Promise<void> {
  const files: Array<[string, string | undefined, string]> = [
    ['--iidfile', req.iidfile, result.imageId],
    ['--metadata-file', req.metadataFile, JSON.stringify(buildMetadata(result), null, 2) + '\n'],
  ];
  for (const [flag, file, text] of files) {
    if (file === undefined) continue;
    await fs.writeFile(file, text).catch((e: Error) => {
      throw new Error(`cannot write ${flag} ${file}: ${errnoReason(e)}`);
    });
  }
}

/** A flag value's parse error as a usage error (exit 2, one line). */
function usage<T>(parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** Flags a no-op rebuild can vouch for; any other flag set means a full build. */
const NOOP_FLAGS = new Set([
  'provenance',
  'sbom',
  'file',
  'build-arg',
  'target',
  'tag',
  'progress',
  'quiet',
  'iidfile',
  'metadata-file',
  'label',
  'network',
  'platform',
  'secret',
  'registry-mirror',
  'insecure-registry',
  'rm',
  'force-rm',
]);

/** What the no-op memo keys on, or undefined when this build must run in full (stdin, remote context, other flags). */
function noopRequest(req: BuildRequest, ctx: CommandContext): NoopRequest | undefined {
  if (req.context === '-' || req.dockerfile === '-' || /^[a-z]+:\/\/|^git@/.test(req.context)) return undefined;
  if (req.network && req.network !== 'host' && req.network !== 'none' && req.network !== 'default') return undefined;
  for (const [k, v] of Object.entries(ctx.values)) {
    if (v === undefined || v === false || (Array.isArray(v) && v.length === 0)) continue;
    if (!NOOP_FLAGS.has(k)) return undefined;
  }
  return {
    root: ctx.root,
    contextDir: req.context,
    dockerfile: { path: req.dockerfile },
    tags: req.tags,
    options: {
      buildArgs: req.buildArgs,
      target: req.target ?? '',
      platform: req.platform ?? '',
      labels: req.labels,
      network: req.network === 'none' ? 'none' : 'host',
      secrets: req.secrets.map((s) => parseSecret(s).id),
    },
  };
}

/**
 * A no-op rebuild: the steps shown as BuildKit shows a fully cached build, the image id printed and
 * written as a full build would (the Dockerfile's lint warnings were shown by the build that made it).
 */
async function replayNoop(req: BuildRequest, ctx: CommandContext, earlier: NoopRecord): Promise<number> {
  const started = Date.now();
  const progress = createProgress(ctx.values.quiet ? 'quiet' : (req.progress ?? 'auto'), ctx.stderr);
  for (const [name, cached] of earlier.steps) {
    const step = progress.step(name);
    if (cachedOnRebuild(name, cached)) step.cached();
    else step.done();
  }
  progress.close();
  const result: BuildResult = {
    digest: earlier.result.digest,
    imageId: earlier.result.imageId,
    mediaType: earlier.result.mediaType,
    size: earlier.result.size,
    tags: req.tags,
  } as BuildResult;
  if (!ctx.values.quiet) ctx.stderr.write(`Built ${result.imageId} in ${((Date.now() - started) / 1000).toFixed(1)}s\n`);
  ctx.stdout.write(`${result.imageId}\n`);
  await writeResultFiles(req, result);
  return 0;
}

async function runBuild(req: BuildRequest, ctx: CommandContext, noop?: { request: NoopRequest; before: NoopSnapshot }): Promise<number> {
  const [
    { build, BuildStepError },
    { parseOutputSpec },
    { openStore },
    { checkWarnings, contextFromStdin, loadIntoDocker, parseBuildExtras, refuseRemoteContext, requireRoot },
  ] = await Promise.all([
    import('../../builder/solver/index.js'),
    import('../../builder/image/index.js'),
    import('../open-store.js'),
    import('../build-flags.js'),
  ]);
  if (req.network && req.network !== 'host' && req.network !== 'none' && req.network !== 'default') {
    throw new UsageError(`--network must be host or none, not "${req.network}"`);
  }
  if (req.push && req.tags.length === 0) throw new UsageError('--push needs at least one -t REGISTRY/NAME:TAG to push to');
  const outputs = req.outputs.map((o) => {
    try {
      return parseOutputSpec(o);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  });
  const secrets = req.secrets.map(parseSecret);
  if (req.context !== '-') await refuseRemoteContext(req.context);
  if (req.context === '-' && req.dockerfile === '-') throw new UsageError('the context and the Dockerfile cannot both come from standard input');
  const toStdout = outputs.some((o) => o.dest === '-');
  if (toStdout && process.stdout.isTTY) throw new UsageError('refusing to write a tar to a terminal (dest=-): redirect standard output or give dest=FILE');
  const extras = await parseBuildExtras(req);
  requireRoot();
  const shown = createProgress(ctx.values.quiet ? 'quiet' : (req.progress ?? 'auto'), ctx.stderr);
  // the steps are kept for the no-op memo; its inputs are taken before the build reads them
  const recorded = recordingProgress(shown);
  const progress = recorded.display;
  const store = await openStore(ctx, 'build');
  const started = Date.now();
  const stdinContext = req.context === '-' ? await contextFromStdin(store) : undefined;
  const dockerfileText = stdinContext?.dockerfileText ?? (req.dockerfile === '-' ? await readDockerfile('-') : undefined);
  const dockerfile =
    stdinContext && !dockerfileText
      ? req.dockerfile
        ? path.join(stdinContext.dir, req.dockerfile)
        : await defaultDockerfile(stdinContext.dir)
      : req.dockerfile;
  try {
    const result = await build({
      store,
      contextDir: stdinContext?.dir ?? req.context,
      ...(dockerfileText !== undefined ? { dockerfileText } : { dockerfile }),
      tags: req.tags,
      buildArgs: req.buildArgs,
      ...(req.target ? { target: req.target } : {}),
      noCache: req.noCache,
      cacheTo: req.cacheTo.map((c) => usage(() => parseCacheTo(c))),
      cacheFrom: req.cacheFrom.map((c) => usage(() => parseCacheFrom(c))),
      noCacheFilter: req.noCacheFilter,
      pull: req.pull,
      push: req.push,
      outputs,
      network: req.network === 'none' ? 'none' : 'host',
      ...(req.platform ? { platform: req.platform } : {}),
      secrets,
      labels: req.labels,
      ...extras,
      registry: {
        registryMirrors: req.registryMirrors,
        insecureRegistries: req.insecureRegistries,
        // daemon.json problems are dockerd's, not the build's: a line beside the progress, never a failure.
        warn: (m: string) => (ctx.values.quiet ? void ctx.stderr.write(`tsbuild: warning: ${m}\n`) : progress.message(`[Warning] ${m}`)),
      },
      progress,
    });
    progress.close();
    if (noop)
      await rememberNoop(
        noop.request,
        noop.before,
        { digest: result.digest, imageId: result.imageId, mediaType: result.mediaType, size: result.size },
        recorded.steps,
      ).catch(() => undefined);
    if (!ctx.values.quiet) ctx.stderr.write(`Built ${result.imageId} in ${((Date.now() - started) / 1000).toFixed(1)}s\n`);
    // with an archive on standard output, nothing else may go there
    if (!toStdout) ctx.stdout.write(`${result.imageId}\n`);
    if (req.load) {
      for (const line of await loadIntoDocker(store, { digest: result.digest, mediaType: result.mediaType, size: result.size, names: result.tags })) {
        if (!ctx.values.quiet) ctx.stderr.write(`${line}\n`);
      }
    }
    if (!ctx.values.quiet) {
      const text = dockerfileText ?? (await fs.readFile(dockerfile || path.join(req.context, 'Dockerfile'), 'utf8').catch(() => ''));
      ctx.stderr.write(
        checkWarnings(text, {
          file: 'Dockerfile',
          buildArgs: req.buildArgs,
          ...(req.target ? { target: req.target } : {}),
          ...(req.platform ? { platform: req.platform } : {}),
        }),
      );
    }
    await writeResultFiles(req, result);
    return 0;
  } catch (e) {
    progress.close();
    if (e instanceof BuildStepError) {
      if (!e.cancelled) ctx.stderr.write(e.report());
      throw new Error(e.summary());
    }
    throw e;
  } finally {
    await stdinContext?.remove();
  }
}
