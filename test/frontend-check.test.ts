/** `tsbuild build --check` (checkDockerfile and the CLI) and `tsbuild debug dump-ast`. */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { checkDockerfile } from '../builder/frontend/index.js';
import { buildCommand, parseBuildRequest } from '../cli/commands/build.js';
import { debugCommand } from '../cli/commands/debug.js';
import type { CommandContext } from '../cli/command.js';
import { tempDir } from './helpers/temp.js';
import { tsbuild } from './helpers/run.js';

const df = (...lines: string[]) => lines.join('\n') + '\n';
const rules = (text: string, opts = {}) => checkDockerfile(text, opts).map((p) => `${p.line}:${p.rule}`);

test('a clean Dockerfile has no problems', (t) => {
  t.deepEqual(
    checkDockerfile(df('FROM busybox AS build', 'ARG V=1', 'ENV PATH=/opt:$PATH', 'WORKDIR /app', 'COPY . .', 'RUN make $V', 'FROM build', 'CMD ["./app"]')),
    [],
  );
});

test('unknown instruction is an error with its line and column', (t) => {
  const problems = checkDockerfile(df('FROM a', '  RUNN make', 'CMD ["x"]'));
  t.deepEqual(problems, [
    { file: 'Dockerfile', line: 2, column: 3, rule: 'UnknownInstruction', message: 'unknown instruction: RUNN (did you mean RUN?)', severity: 'error' },
  ]);
});

test('undefined variables, in stages and in FROM', (t) => {
  t.deepEqual(
    rules(df('ARG TAG=1', 'FROM alpine:$TAG$SUFFIX', 'ENV A=$UNSET', 'ARG DECLARED', 'WORKDIR /x/$DECLARED', 'COPY $MISSING /x', 'RUN echo $NOT_CHECKED')),
    ['2:UndefinedArgInFrom', '3:UndefinedVar', '6:UndefinedVar'],
  );
  t.deepEqual(rules(df('FROM a AS base', 'ENV X=1', 'FROM base', 'ENV Y=$X')), [], 'ENV from the parent stage is defined');
  t.deepEqual(rules(df('FROM img', 'ENV Y=$FROM_IMAGE'), { imageEnv: () => ['FROM_IMAGE=1'] }), [], 'the base image ENV counts when known');
});

test('stage name casing, FROM/AS casing, duplicate and reserved stage names', (t) => {
  t.deepEqual(rules(df('FROM a AS Build', 'FROM b as other', 'FROM c AS other', 'FROM d AS scratch')), [
    '1:StageNameCasing',
    '2:FromAsCasing',
    '3:DuplicateStageName',
    '4:ReservedStageName',
  ]);
});

test('JSON form recommended for CMD and ENTRYPOINT; repeated CMD; other warnings', (t) => {
  t.deepEqual(
    rules(
      df('FROM a', 'MAINTAINER me', 'ENV k v', 'CMD run me', 'ENTRYPOINT ["ok"]', 'CMD ["again"]', 'WORKDIR rel', 'EXPOSE 80/TCP', 'ARG GITHUB_TOKEN', 'run x'),
    ),
    [
      '2:MaintainerDeprecated',
      '3:LegacyKeyValueFormat',
      '4:JSONArgsRecommended',
      '4:MultipleInstructionsDisallowed',
      '7:WorkdirRelativePath',
      '8:ExposeProtoCasing',
      '9:SecretsUsedInArgOrEnv',
      '10:ConsistentInstructionCasing',
    ],
  );
});

test('no JSONArgsRecommended after an explicit SHELL', (t) => {
  t.deepEqual(rules(df('FROM a', 'SHELL ["/bin/bash", "-c"]', 'CMD echo hi', 'FROM b', 'ENTRYPOINT run')), ['5:JSONArgsRecommended']);
});

test('a missing --target is reported', (t) => {
  const problems = checkDockerfile(df('FROM a AS one'), { target: 'two' });
  t.is(problems.length, 1);
  t.like(problems[0], { rule: 'TargetNotFound', severity: 'error', message: 'target stage "two" could not be found (stages: one)' });
});

test('# check=skip= silences rules', (t) => {
  t.deepEqual(rules(df('# check=skip=JSONArgsRecommended,MaintainerDeprecated', 'FROM a', 'MAINTAINER x', 'CMD x')), []);
  t.deepEqual(rules(df('# check=skip=all', 'FROM a', 'CMD x')), []);
});

test('a parse error is a single problem', (t) => {
  t.deepEqual(
    checkDockerfile(df('FROM a', 'ENV NOVALUE')).map((p) => [p.line, p.rule, p.severity]),
    [[2, 'InvalidDockerfile', 'error']],
  );
});

/** Runs a command object in-process, capturing its output. */
async function runCommand(cmd: typeof buildCommand, values: CommandContext['values'], positionals: string[]) {
  let stdout = '';
  let stderr = '';
  const sink = (f: (s: string) => void) =>
    new Writable({
      write(chunk, _e, cb) {
        f(String(chunk));
        cb();
      },
    });
  const ctx: CommandContext = {
    values,
    positionals,
    root: tempDir(),
    debug: false,
    stdout: sink((s) => (stdout += s)),
    stderr: sink((s) => (stderr += s)),
  };
  let code: number | void | undefined;
  let error: Error | undefined;
  try {
    code = await cmd.run!(ctx);
  } catch (e) {
    error = e as Error;
  }
  return { code: code ?? 0, stdout, stderr, error };
}

test('build --check prints Dockerfile:LINE: RULE: message and exits 1; clean files say so and exit 0', async (t) => {
  const dir = tempDir();
  fs.writeFileSync(path.join(dir, 'Dockerfile'), df('FROM a AS Build', 'CMD run'));
  const bad = await runCommand(buildCommand, { check: true, file: path.join(dir, 'Dockerfile') }, [dir]);
  t.is(bad.code, 1);
  const shown = path.relative(process.cwd(), path.join(dir, 'Dockerfile'));
  t.is(
    bad.stdout,
    `${shown}:1: StageNameCasing: Stage name 'Build' should be lowercase\n${shown}:2: JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals\n`,
  );

  fs.writeFileSync(path.join(dir, 'Dockerfile'), df('ARG BASE', 'FROM ${BASE:-busybox}', 'ARG X', 'RUN echo $X', 'CMD ["sh"]'));
  const good = await runCommand(buildCommand, { check: true, 'build-arg': ['X=1'] }, [dir]);
  t.is(good.code, 0);
  t.is(good.stdout, 'Check complete, no warnings found.\n');
});

test('build flags parse into a BuildRequest', (t) => {
  process.env.TSBUILD_TEST_FROM_ENV = 'from-env';
  const ctx = {
    values: {
      tag: ['a:b', 'c:d'],
      'build-arg': ['A=1', 'B=x=y', 'TSBUILD_TEST_FROM_ENV', 'UNSET_IN_ENV_XYZ'],
      'no-cache': true,
      network: 'host',
      secret: ['id=x,src=f'],
      target: 'app',
    },
    positionals: ['ctx'],
    root: '/tmp',
    debug: false,
    stdout: process.stdout,
    stderr: process.stderr,
  } as CommandContext;
  const req = parseBuildRequest(ctx);
  t.like(req, {
    context: 'ctx',
    dockerfile: path.join('ctx', 'Dockerfile'),
    tags: ['a:b', 'c:d'],
    noCache: true,
    network: 'host',
    target: 'app',
    check: false,
  });
  t.deepEqual(req.buildArgs, { A: '1', B: 'x=y', TSBUILD_TEST_FROM_ENV: 'from-env' });
  t.throws(() => parseBuildRequest({ ...ctx, values: { 'build-arg': ['=x'] } }), { message: /has no name/ });
});

test('debug dump-ast prints the s-expression tree', async (t) => {
  const dir = tempDir();
  const file = path.join(dir, 'Dockerfile');
  fs.writeFileSync(file, df('FROM a AS b', 'COPY --from=b ["x y", "/z"]', 'ONBUILD RUN echo hi'));
  const dump = debugCommand.subcommands!.find((c) => c.name === 'dump-ast')!;
  const r = await runCommand(dump, { file }, []);
  t.is(r.stdout, '(from "a" "AS" "b")\n(copy ["--from=b"] "x y" "/z")\n(onbuild (run "echo hi"))\n');
  fs.writeFileSync(file, df('FROM a', 'ENV X'));
  const e = await runCommand(dump, {}, [file]);
  t.is(e.error?.message, `${file}:2:5: ENV must have two arguments`);
});

test('the tsbuild CLI: --check exit codes, dump-ast, and one-line errors from build', async (t) => {
  const dir = tempDir();
  fs.writeFileSync(path.join(dir, 'Dockerfile'), df('FROM a', 'BOGUS x'));
  const r = await tsbuild(tempDir(), ['build', '--check', dir], { cwd: dir });
  t.is(r.code, 1);
  t.is(r.stdout, 'Dockerfile:2: UnknownInstruction: unknown instruction: BOGUS\n');
  const d = await tsbuild(tempDir(), ['debug', 'dump-ast', '-f', 'Dockerfile'], { cwd: dir });
  t.is(d.code, 0);
  t.is(d.stdout, '(from "a")\n(bogus)\n');
  fs.writeFileSync(path.join(dir, 'Dockerfile'), df('FROM a', 'RUN --mount=type=nfs true'));
  const p = await tsbuild(tempDir(), ['build', '-t', 'x', dir], { cwd: dir });
  t.is(p.code, 1);
  t.regex(p.stderr, /^tsbuild: (\S*\/)?Dockerfile:2:13: unsupported mount type "nfs"[^\n]*\n$/, 'a bad Dockerfile fails the build with one line');
});
