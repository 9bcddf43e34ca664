import { promises as fs } from 'node:fs';
import { isAbsolute, join, posix, relative } from 'node:path';
import { tempName, warmHashThread } from '../../store/index.js';
import { trackDir, type RunMount as ExecMount } from '../exec/index.js';
import { runOnSnapshot } from './overlay.js';
import { TailBuffer, type StepHandle } from '../progress/index.js';
import { cacheKey, cacheMountDir, imageCacheKey } from './build-cache.js';
import { BuildStepError, cancellation } from './errors.js';
import type { StageScope } from '../frontend/index.js';
import { layerStep, type StageState } from './layer-step.js';
import { mountReadOnly } from './overlay.js';
import { resolveStageRef, runCommandLine, type RunInstruction, type RunMount } from './plan.js';
import type { SolveContext } from './solve-context.js';

interface ResolvedMounts {
  mounts: ExecMount[];
  /** Part of the cache key: what the mounts bring in. */
  key: string;
  /** `NAME=value` of secrets exposed as environment variables (`env=NAME`): for this RUN only, never in the key. */
  env: string[];
  release(): Promise<void>;
}

/** RUN --mount specs → mounts the runtime understands (bind sources resolved, secrets located). */
async function resolveMounts(ctx: SolveContext, specs: RunMount[], scratch: string): Promise<ResolvedMounts> {
  const mounts: ExecMount[] = [];
  const env: string[] = [];
  const keyParts: string[] = [];
  let sshCount = 0;
  const releases: Array<() => Promise<void>> = [];
  const release = async () => {
    for (const r of releases.reverse()) await r().catch(() => undefined);
  };
  try {
    for (const m of specs) {
      const target = m.target;
      switch (m.type) {
        case 'cache':
          mounts.push({
            type: 'cache',
            target: target!,
            ...(m.id ? { id: m.id } : {}),
            ...(m.sharing ? { sharing: m.sharing } : {}),
            readonly: m.readOnly,
            ...(m.mode !== undefined ? { mode: m.mode } : {}),
            ...(m.uid !== undefined ? { uid: m.uid } : {}),
            ...(m.gid !== undefined ? { gid: m.gid } : {}),
          });
          keyParts.push(`cache ${target} ${m.id ?? ''}`);
          // remembered for --cache-to (mode=max) and filled from --cache-from before its first use
          await ctx.cache.useMount(m.id || target!, cacheMountDir(await ctx.store.localDir('cache'), m.id || target!));
          break;
        case 'tmpfs':
          mounts.push({ type: 'tmpfs', target: target!, ...(m.size ? { size: m.size } : {}) });
          keyParts.push(`tmpfs ${target}`);
          break;
        case 'secret': {
          const id = m.id ? m.id : target ? target.split('/').pop()! : '';
          const secret = ctx.secrets.get(id);
          if (!secret) {
            if (m.required) throw new Error(`secret "${id}" is required by RUN --mount=type=secret but was not given: pass --secret id=${id},src=FILE`);
            continue;
          }
          let source = secret.src;
          if (!source && secret.env !== undefined) {
            source = join(scratch, `secret-${id}`);
            await fs.writeFile(source, process.env[secret.env] ?? '', { mode: 0o600 });
          }
          // BuildKit: `env=NAME` exposes the secret as $NAME to this RUN; it is a file too only with a target
          if (m.env !== undefined) {
            const value = await fs.readFile(source!, 'utf8').catch(() => {
              throw new Error(`secret "${id}" cannot be read from ${source}; pass it with --secret id=${id},src=FILE`);
            });
            env.push(`${m.env}=${value}`);
          }
          if (m.env === undefined || target) {
            mounts.push({
              type: 'secret',
              id,
              source: source!,
              ...(target ? { target } : {}),
              ...(m.mode !== undefined ? { mode: m.mode } : {}),
              ...(m.uid !== undefined ? { uid: m.uid } : {}),
              ...(m.gid !== undefined ? { gid: m.gid } : {}),
            });
          }
          keyParts.push(`secret ${id} ${target ?? ''} ${m.env ?? ''}`); // never the secret's content
          break;
        }
        case 'bind': {
          let root = ctx.context.dir;
          let fromKey = 'context';
          if (m.from) {
            const from = m.from;
            const ref = resolveStageRef(ctx.plan, from);
            let top;
            if (ref.type === 'stage') {
              const result = await ctx.stage(ref.index);
              top = result.top;
              fromKey = result.key;
            } else {
              const image = await ctx.bases.resolve(from);
              const { unpackImageLayers } = await import('../snapshot/index.js');
              const snap = await unpackImageLayers(
                ctx.store,
                ctx.snapshots,
                image.manifest.layers.map((d, i) => ({ descriptor: d, diffId: image.config.rootfs.diff_ids[i]! })),
              );
              top = snap?.chainId;
              fromKey = imageCacheKey(image);
            }
            const view = await mountReadOnly(ctx.snapshots, top);
            releases.push(view.release);
            root = view.root;
          }
          const source = join(root, (m.source ?? '/').replace(/^\/+/, ''));
          if (!source.startsWith(root)) throw new Error(`RUN --mount=type=bind source ${m.source} leaves its root`);
          if (!m.from) fromKey = await ctx.checksummer.checksum(ctx.context.dir, [(m.source ?? '.').replace(/^\/+/, '') || '.'], ctx.context.ignore);
          mounts.push({ type: 'bind', target: target!, source, readwrite: !m.readOnly });
          if (!m.from) {
            // tsbuild's own state dir inside the context (--root there) is hidden under an empty dir
            const sub = relative(ctx.context.dir, source);
            for (const rel of ctx.context.leftOut) {
              const below = sub === '' ? rel : relative(sub, rel);
              if (below.startsWith('..') || isAbsolute(below)) continue;
              mounts.push({ type: 'bind', target: posix.join(target!, below), source: await ctx.snapshots.emptyLower(), readwrite: false });
            }
          }
          keyParts.push(`bind ${target} ${m.source ?? ''} ${fromKey}`);
          break;
        }
        case 'ssh': {
          // BuildKit: id `default`; target /run/buildkit/ssh_agent.N; the first ssh mount is $SSH_AUTH_SOCK
          const id = m.id || 'default';
          const socket = ctx.ssh?.get(id);
          if (!socket) {
            if (m.required)
              throw new Error(`no SSH agent with id "${id}" for RUN --mount=type=ssh: pass --ssh ${id === 'default' ? 'default' : `${id}=SOCKET`}`);
            continue;
          }
          const sshTarget = target ?? `/run/buildkit/ssh_agent.${sshCount}`;
          if (sshCount === 0) env.push(`SSH_AUTH_SOCK=${sshTarget}`);
          sshCount++;
          mounts.push({
            type: 'ssh',
            id,
            socket,
            target: sshTarget,
            ...(m.mode !== undefined ? { mode: m.mode } : {}),
            ...(m.uid !== undefined ? { uid: m.uid } : {}),
            ...(m.gid !== undefined ? { gid: m.gid } : {}),
          });
          keyParts.push(`ssh ${id} ${sshTarget}`); // never the socket's path
          break;
        }
        default:
          throw new Error(`RUN --mount=type=${m.type} is not supported by tsbuild`);
      }
    }
  } catch (e) {
    await release();
    throw e;
  }
  return { mounts, key: keyParts.join('\n'), env, release };
}

/** RUN: the command in a runc container on the stage's overlay; its changes become a layer. */
export async function runStep(ctx: SolveContext, state: StageState, inst: RunInstruction, scope: StageScope, step: StepHandle): Promise<void> {
  const image = state.image;
  const line = runCommandLine(inst);
  const scratch = tempName(join(await ctx.store.localDir('tmp'), 'run-files'));
  await fs.mkdir(scratch);
  const untrackScratch = trackDir(scratch);
  const specs = [...inst.mounts];
  let args: string[];
  const fileMounts: ExecMount[] = [];
  if (line.kind === 'exec') args = line.args;
  else if (line.kind === 'shell') args = [...image.shell(), line.script];
  else {
    const file = join(scratch, line.name.replace(/[^A-Za-z0-9_.-]/g, '_'));
    await fs.writeFile(file, line.data, { mode: 0o755 });
    const target = `/dev/pipes/${line.name}`;
    fileMounts.push({ type: 'bind', target, source: file });
    args = [target];
  }
  const runEnv = scope.runEnvironment();
  const network = inst.network === 'default' ? ctx.network : inst.network;
  const user = image.container.User ?? '';
  const cwd = image.container.WorkingDir || '/';
  const resolved = await resolveMounts(ctx, specs, scratch);
  const createdBy = `RUN ${args.join(' ')}`;
  const key = cacheKey(
    state.key,
    'RUN',
    JSON.stringify(args),
    JSON.stringify(runEnv),
    user,
    cwd,
    network,
    resolved.key,
    line.kind === 'file' ? line.data : '',
    ...(ctx.extraHosts?.length ? [`hosts ${JSON.stringify(ctx.extraHosts)}`] : []),
  );
  const tail = new TailBuffer();
  try {
    await layerStep(ctx, state, key, createdBy, step, 'upper-only', async ({ upper }) => {
      const onOutput = (chunk: Buffer) => {
        tail.push(chunk);
        step.log(chunk);
      };
      // a RUN's layer is often large: its hashing thread starts while the container runs
      void warmHashThread();
      const { exitCode } = await runOnSnapshot(ctx.store, {
        lowers: state.top,
        upperDir: upper,
        args,
        env: [...runEnv, ...resolved.env],
        cwd,
        ...(user ? { user } : {}),
        network,
        ...(ctx.extraHosts?.length ? { extraHosts: ctx.extraHosts } : {}),
        mounts: [...resolved.mounts, ...fileMounts],
        onStdout: onOutput,
        onStderr: onOutput,
        signal: ctx.signal,
      });
      if (ctx.signal.aborted) throw cancellation(ctx.signal);
      if (exitCode !== 0) {
        const shown = line.kind === 'shell' ? [...image.shell(), line.script].join(' ') : args.join(' ');
        throw new BuildStepError(`process "${shown}" did not complete successfully: exit code: ${exitCode}`, '', inst.location, tail.lines(20), exitCode);
      }
    });
  } finally {
    await resolved.release();
    await fs.rm(scratch, { recursive: true, force: true });
    untrackScratch();
  }
}
