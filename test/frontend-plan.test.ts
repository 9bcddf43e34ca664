/** Build plan: RUN mounts, ARG/ENV scoping across stages, --target pruning, the stage graph, expansion rules. */
import test from 'ava';
import {
  buildPlan,
  StageScope,
  expandWord,
  parseOnbuildTrigger,
  DockerfileError,
  type Instruction,
  type Plan,
  type PlanStage,
  type RunInstruction,
} from '../builder/frontend/index.js';

const df = (...lines: string[]) => lines.join('\n') + '\n';

/** Walks the needed stages as the builder would; returns the expanded instructions per stage id. */
function walk(plan: Plan, imageEnv: Record<string, string[]> = {}): Map<string, { ins: Instruction[]; scope: StageScope }> {
  const scopes: StageScope[] = [];
  const out = new Map<string, { ins: Instruction[]; scope: StageScope }>();
  for (const stage of plan.needed) {
    const scope = new StageScope(
      plan,
      stage.base.type === 'stage' ? { parent: scopes[stage.base.index] } : { imageEnv: stage.base.type === 'image' ? (imageEnv[stage.base.ref] ?? []) : [] },
    );
    const ins = stage.instructions.map((i) => scope.apply(i));
    scopes[stage.index] = scope;
    out.set(stage.id, { ins, scope });
  }
  return out;
}

test('RUN --mount: cache, bind, tmpfs, secret and ssh with their options and defaults', (t) => {
  const plan = buildPlan(
    df(
      'FROM busybox AS deps',
      'FROM busybox',
      'RUN --mount=type=cache,target=/root/.cache,id=pip,sharing=locked,mode=0700,uid=1000,gid=1000 \\',
      '    --mount=type=bind,from=deps,source=/out,target=/in,rw \\',
      '    --mount=type=tmpfs,target=/tmp,size=64m \\',
      '    --mount=type=secret,id=npmrc,target=/root/.npmrc,required=true \\',
      '    --mount=type=secret,id=token,env=TOKEN \\',
      '    --mount=type=ssh \\',
      '    --mount=target=/src \\',
      '    --network=host --security=sandbox make',
    ),
  );
  const run = plan.target.instructions[0] as RunInstruction;
  t.is(run.network, 'host');
  t.deepEqual(run.mounts, [
    { type: 'cache', readOnly: false, required: false, target: '/root/.cache', id: 'pip', sharing: 'locked', mode: 0o700, uid: 1000, gid: 1000 },
    { type: 'bind', readOnly: false, required: false, from: 'deps', source: '/out', target: '/in' },
    { type: 'tmpfs', readOnly: false, required: false, target: '/tmp', size: 64 * 1024 * 1024 },
    { type: 'secret', readOnly: true, required: true, id: 'npmrc', target: '/root/.npmrc' },
    { type: 'secret', readOnly: true, required: false, id: 'token', env: 'TOKEN' },
    { type: 'ssh', readOnly: true, required: false },
    { type: 'bind', readOnly: true, required: false, target: '/src' },
  ]);
  t.deepEqual(plan.target.dependsOn, [0], 'a bind mount from a stage makes it a dependency');
  t.deepEqual(
    plan.needed.map((s) => s.index),
    [0, 1],
  );
});

test('RUN --mount values expand with the step environment', (t) => {
  const plan = buildPlan(
    df('FROM busybox', 'ARG CACHE_ID=go', 'ENV DIR=/cache', 'RUN --mount=type=cache,id=$CACHE_ID,target=${DIR}/x,mode=${MODE:-0750} go build'),
    {
      buildArgs: {},
    },
  );
  const run = walk(plan).get('stage-0')!.ins[2] as RunInstruction;
  t.like(run.mounts[0], { type: 'cache', id: 'go', target: '/cache/x', mode: 0o750 });
  t.is((run.args as string[])[0], 'go build');
});

test('mount checks: secret without id/target, sharing on a bind, uid on tmpfs', (t) => {
  for (const [spec, msg] of [
    ['type=secret', /one of id, source or target is required/],
    ['type=bind,sharing=shared,target=/x', /invalid cache sharing set for bind mount/],
    ['type=tmpfs,uid=1,target=/x', /uid not allowed for "tmpfs" type mounts/],
    ['type=cache,target=/x,ro=perhaps', /invalid value for ro: perhaps/],
  ] as const) {
    const err = t.throws(() => buildPlan(df('FROM a', `RUN --mount=${spec} true`)), { instanceOf: DockerfileError });
    t.regex(err!.message, msg);
    t.regex(err!.message, /^Dockerfile:2:\d+: /);
  }
});

test('global ARGs are usable in FROM but not in a stage unless redeclared', (t) => {
  const plan = buildPlan(
    df(
      'ARG VERSION=1.0',
      'ARG REGISTRY=example.com',
      'FROM ${REGISTRY}/base:${VERSION} AS a',
      'RUN echo $VERSION',
      'LABEL v=$VERSION',
      'FROM ${REGISTRY}/base:${VERSION} AS b',
      'ARG VERSION',
      'LABEL v=$VERSION',
    ),
    { target: 'a' },
  );
  t.is(plan.target.baseName, 'example.com/base:1.0');
  const a = walk(plan).get('a')!;
  t.like(a.ins[1], { kind: 'LABEL', pairs: [{ key: 'v', value: '' }] });
  t.like(a.ins[0], { kind: 'RUN', args: ['echo $VERSION'] }, 'RUN keeps $ for the shell');
  t.false(a.scope.env.has('VERSION'));

  const planB = buildPlan(plan.ast, { target: 'b', buildArgs: { VERSION: '2.0' } });
  t.is(planB.target.baseName, 'example.com/base:2.0');
  const b = walk(planB).get('b')!;
  t.like(b.ins[1], { kind: 'LABEL', pairs: [{ key: 'v', value: '2.0' }] });
  t.is(b.scope.env.get('VERSION'), '2.0');
  t.false(b.scope.configEnv.has('VERSION'), 'ARG values do not go into the image config');
});

test('ARG defaults, build-arg overrides and ENV precedence inside a stage', (t) => {
  const plan = buildPlan(df('FROM busybox', 'ARG A=default-a B=${A}-b', 'ARG C', 'ENV D=${C:-no-c} E=$A', 'ENV A=env-a', 'ARG A', 'WORKDIR /w/$A'), {
    buildArgs: { A: 'cli-a' },
  });
  const { ins, scope } = walk(plan).get('stage-0')!;
  t.like(ins[0], {
    kind: 'ARG',
    args: [
      { key: 'A', value: 'cli-a' },
      { key: 'B', value: 'cli-a-b' },
    ],
  });
  t.like(ins[1], { kind: 'ARG', args: [{ key: 'C', value: undefined }] });
  t.like(ins[2], {
    kind: 'ENV',
    pairs: [
      { key: 'D', value: 'no-c' },
      { key: 'E', value: 'cli-a' },
    ],
  });
  t.like(ins[4], { kind: 'ARG', args: [{ key: 'A', value: 'cli-a' }] });
  t.like(ins[5], { kind: 'WORKDIR', path: '/w/cli-a' });
  t.is(scope.configEnv.get('A'), 'env-a');
  t.is(scope.env.get('A'), 'cli-a');
});

test('ENV of the base image and of a parent stage are visible; ENV in one instruction sees the env before it', (t) => {
  const plan = buildPlan(df('FROM alpine AS base', 'ENV PATH=/opt/bin:$PATH X=1', 'ENV X=2 Y=$X', 'FROM base', 'ENV Z=$X-$Y', 'USER ${USER_NAME:-app}'));
  const stages = walk(plan, { alpine: ['PATH=/usr/bin:/bin'] });
  t.is(stages.get('base')!.scope.env.get('PATH'), '/opt/bin:/usr/bin:/bin');
  t.is(stages.get('base')!.scope.env.get('Y'), '1');
  const child = stages.get('stage-1')!;
  t.like(child.ins[0], { kind: 'ENV', pairs: [{ key: 'Z', value: '2-1' }] });
  t.like(child.ins[1], { kind: 'USER', user: 'app' });
  t.deepEqual([...child.scope.configEnv.keys()], ['PATH', 'X', 'Y', 'Z']);
});

test('predefined platform args: global in FROM, in a stage only after ARG', (t) => {
  const plan = buildPlan(
    df('FROM --platform=$BUILDPLATFORM golang AS build', 'ARG TARGETOS TARGETARCH', 'RUN echo', 'LABEL target=$TARGETOS/$TARGETARCH build=$BUILDARCH'),
    { platform: 'linux/arm64', buildPlatform: 'linux/amd64' },
  );
  t.deepEqual(plan.target.platform, { os: 'linux', architecture: 'amd64' });
  const { ins } = walk(plan).get('build')!;
  t.like(ins[2], {
    kind: 'LABEL',
    pairs: [
      { key: 'target', value: 'linux/arm64' },
      { key: 'build', value: '' },
    ],
  });
  t.is(plan.globalArgs.get('TARGETPLATFORM'), 'linux/arm64');
});

test('proxy build args reach RUN without an ARG and are not reported unused', (t) => {
  const plan = buildPlan(df('FROM a', 'RUN env'), { buildArgs: { HTTP_PROXY: 'http://proxy:3128', no_proxy: 'localhost', UNUSED: '1' } });
  const { scope } = walk(plan).get('stage-0')!;
  // every stage has a PATH (the default when its base has none), as in BuildKit
  t.deepEqual(scope.runEnvironment().sort(), [
    'HTTP_PROXY=http://proxy:3128',
    'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    'no_proxy=localhost',
  ]);
  t.false(scope.env.has('HTTP_PROXY'));
  t.deepEqual(plan.unusedBuildArgs, ['UNUSED']);
});

test('--target builds only the stages the target needs, dependencies first', (t) => {
  const text = df(
    'FROM busybox AS base', // 0
    'FROM base AS tools', // 1 (base)
    'FROM busybox AS docs', // 2 (unused by app)
    'COPY --from=tools /t /t',
    'FROM base AS app', // 3
    'COPY --from=1 /t /t',
    'COPY --from=nginx:alpine /etc/nginx /etc/nginx',
    'FROM app AS test', // 4
    'RUN --mount=from=docs,target=/docs true',
  );
  const ids = (stages: PlanStage[]) => stages.map((s) => s.id);
  t.deepEqual(ids(buildPlan(text, { target: 'app' }).needed), ['base', 'tools', 'app']);
  t.deepEqual(ids(buildPlan(text, { target: 'TOOLS' }).needed), ['base', 'tools']);
  t.deepEqual(ids(buildPlan(text).needed), ['base', 'tools', 'docs', 'app', 'test']);
  const app = buildPlan(text, { target: 'app' }).target;
  t.deepEqual(app.base, { type: 'stage', index: 0 });
  t.deepEqual(app.dependsOn, [0, 1]);
  t.deepEqual(app.images, ['nginx:alpine']);
});

test('an unused stage with a broken base does not fail the plan; a needed one does', (t) => {
  const text = df('FROM ${MISSING} AS broken', 'RUN x', 'FROM busybox AS ok', 'RUN y');
  const plan = buildPlan(text, { target: 'ok' });
  t.deepEqual(
    plan.needed.map((s) => s.id),
    ['ok'],
  );
  t.truthy(plan.stages[0]!.problem);
  const err = t.throws(() => buildPlan(text, { target: 'broken' }), { instanceOf: DockerfileError });
  t.regex(err!.message, /^Dockerfile:1:6: base name \(\$\{MISSING\}\) should not be blank/);
});

test('a missing target names the stages there are', (t) => {
  const err = t.throws(() => buildPlan(df('FROM a AS one', 'FROM b AS two'), { target: 'three' }), { instanceOf: DockerfileError });
  t.is(err!.reason, 'target stage "three" could not be found (stages: one, two)');
});

test('FROM scratch, stage references are exact, and a stage cannot be its own base', (t) => {
  const plan = buildPlan(df('FROM scratch AS s', 'FROM s AS t', 'FROM t AS t2'));
  t.deepEqual(
    plan.stages.map((s) => s.base),
    [{ type: 'scratch' }, { type: 'stage', index: 0 }, { type: 'stage', index: 1 }],
  );
  const self = buildPlan(df('FROM alpine AS alpine'));
  t.deepEqual(self.target.base, { type: 'image', ref: 'alpine' });
});

test('a COPY --from cycle is refused', (t) => {
  const err = t.throws(() => buildPlan(df('FROM a AS x', 'COPY --from=y / /', 'FROM b AS y', 'COPY --from=x / /')), { instanceOf: DockerfileError });
  t.regex(err!.message, /circular dependency detected on stage: (x|y)/);
});

test('COPY/ADD expansion: sources, dest, --chown, --chmod, heredoc bodies; --from and excludes as written', (t) => {
  const plan = buildPlan(
    df(
      'FROM a',
      'ARG U=app V=1',
      'COPY --chown=$U:$U --chmod=0755 --exclude=*.md ["src dir/$V", "/opt/${U}/"]',
      'ADD --checksum=sha256:$V https://example.com/f-$V.tgz /x/',
      'COPY <<EOF <<"RAW" /etc/',
      'user=$U',
      'EOF',
      'user=$U',
      'RAW',
      'ARG PORTS="80 443/udp"',
      'EXPOSE $PORTS',
      'VOLUME $U /data',
      'STOPSIGNAL SIG$V',
    ),
  );
  const { ins } = walk(plan).get('stage-0')!;
  t.like(ins[1], { kind: 'COPY', sources: ['src dir/1'], dest: '/opt/app/', chown: 'app:app', chmod: '0755', excludes: ['*.md'] });
  t.like(ins[2], { kind: 'ADD', sources: ['https://example.com/f-1.tgz'], checksum: 'sha256:1' });
  t.like(ins[3], {
    kind: 'COPY',
    inlineSources: [
      { path: 'EOF', data: 'user=app\n', expand: true },
      { path: 'RAW', data: 'user=$U\n', expand: false },
    ],
  });
  t.like(ins[5], { kind: 'EXPOSE', ports: ['80', '443/udp'] });
  t.like(ins[6], { kind: 'VOLUME', paths: ['app', '/data'] });
  t.like(ins[7], { kind: 'STOPSIGNAL', signal: 'SIG1' });
});

test('CMD, ENTRYPOINT, HEALTHCHECK and SHELL keep their text', (t) => {
  const plan = buildPlan(
    df('FROM a', 'ENV X=1', 'CMD echo $X', 'ENTRYPOINT ["sh", "-c", "echo $X"]', 'HEALTHCHECK --timeout=3s CMD test $X', 'SHELL ["/bin/bash", "-c"]'),
  );
  const { ins } = walk(plan).get('stage-0')!;
  t.like(ins[1], { kind: 'CMD', form: 'shell', args: ['echo $X'] });
  t.like(ins[2], { kind: 'ENTRYPOINT', form: 'exec', args: ['sh', '-c', 'echo $X'] });
  t.like(ins[3], { kind: 'HEALTHCHECK', test: ['CMD-SHELL', 'test $X'], timeout: 3e9 });
  t.like(ins[4], { kind: 'SHELL', shell: ['/bin/bash', '-c'] });
});

test('escape=` applies to expansion too', (t) => {
  const plan = buildPlan(df('# escape=`', 'FROM a', 'ENV P=C:\\dir`$X'));
  const { ins } = walk(plan).get('stage-0')!;
  t.like(ins[0], { kind: 'ENV', pairs: [{ key: 'P', value: 'C:\\dir$X' }] });
  t.is(expandWord('a\\$b', { b: 'B' }), 'a$b');
  t.is(expandWord('a`$b', { b: 'B' }, { escapeToken: '`' }), 'a$b');
});

test('expansion errors point at the instruction', (t) => {
  const plan = buildPlan(df('FROM a', 'ENV X=${NEEDED:?must-be-set}'));
  const scope = new StageScope(plan);
  const err = t.throws(() => scope.apply(plan.target.instructions[0]!), { instanceOf: DockerfileError });
  t.is(err!.message, 'Dockerfile:2:7: failed to process "${NEEDED:?must-be-set}": NEEDED: must-be-set');
});

test('ONBUILD triggers from a base image config parse back into instructions', (t) => {
  const plan = buildPlan(df('FROM a', 'ONBUILD COPY <<EOF /x', 'hi $X', 'EOF', 'ONBUILD RUN make'));
  const exprs = plan.target.instructions.map((i) => (i.kind === 'ONBUILD' ? i.expression : ''));
  const triggers = parseOnbuildTrigger(exprs, { file: 'ONBUILD of a' });
  t.deepEqual(
    triggers.map((i) => i.kind),
    ['COPY', 'RUN'],
  );
  t.like(triggers[0], { kind: 'COPY', dest: '/x', inlineSources: [{ path: 'EOF', data: 'hi $X\n', expand: true }] });
  t.throws(() => parseOnbuildTrigger(['FROM x']), { message: /FROM isn't allowed as an ONBUILD trigger/ });
});
