/** Parser: heredocs, directives, continuations, flags, and one-line errors for bad input. */
import test from 'ava';
import { parseDockerfile, dumpAST, buildPlan, DockerfileError, runCommandLine, type RunInstruction, type CopyInstruction } from '../builder/frontend/index.js';

const df = (...lines: string[]) => lines.join('\n') + '\n';

test('RUN <<EOF keeps the body and runs it through the shell', (t) => {
  const ast = parseDockerfile(df('FROM busybox', 'RUN <<EOF', 'echo "$HOME"', '  indented', 'EOF', 'RUN true'));
  t.is(ast.instructions.length, 3);
  const run = ast.instructions[1]!;
  t.deepEqual(run.args, ['<<EOF']);
  t.deepEqual(run.heredocs, [{ name: 'EOF', fileDescriptor: 0, expand: true, chomp: false, content: 'echo "$HOME"\n  indented\n' }]);
  t.is(run.startLine, 2);
  t.is(run.endLine, 5);
  const plan = buildPlan(ast);
  const ins = plan.target.instructions[0] as RunInstruction;
  t.deepEqual(runCommandLine(ins), { kind: 'shell', script: 'echo "$HOME"\n  indented\n' });
});

test('<<-EOF strips leading tabs from the body and the delimiter line', (t) => {
  const plan = buildPlan(df('FROM busybox', 'COPY <<-EOT /x', '\tline one', '\t\tline two', '\tEOT'));
  const copy = plan.target.instructions[0] as CopyInstruction;
  t.deepEqual(copy.inlineSources, [{ path: 'EOT', data: 'line one\nline two\n', expand: true }]);
  t.deepEqual(copy.sources, []);
  t.is(copy.dest, '/x');
});

test('quoted heredoc delimiters turn expansion off', (t) => {
  const ast = parseDockerfile(df('FROM busybox', `RUN <<'A' cat`, '$X', 'A', 'RUN <<"B"', '$Y', 'B', 'RUN <<C', '$Z', 'C'));
  t.deepEqual(
    ast.instructions.slice(1).map((n) => [n.heredocs[0]!.name, n.heredocs[0]!.expand]),
    [
      ['A', false],
      ['B', false],
      ['C', true],
    ],
  );
});

test('several heredocs on one line are read in order', (t) => {
  const ast = parseDockerfile(df('FROM busybox', 'RUN cat <<FILE1 <<FILE2 > out', 'one', 'FILE1', 'two', 'FILE2', 'USER nobody'));
  const run = ast.instructions[1]!;
  t.deepEqual(
    run.heredocs.map((h) => [h.name, h.content]),
    [
      ['FILE1', 'one\n'],
      ['FILE2', 'two\n'],
    ],
  );
  t.is(ast.instructions[2]!.name, 'user');
  const plan = buildPlan(ast);
  t.deepEqual(runCommandLine(plan.target.instructions[0] as RunInstruction), {
    kind: 'shell',
    script: 'cat <<FILE1 <<FILE2 > out\none\nFILE1\ntwo\nFILE2',
  });
});

test('a single heredoc starting with #! becomes a file to execute', (t) => {
  const plan = buildPlan(df('FROM busybox', 'RUN <<EOF', '#!/usr/bin/env python3', 'print(1)', 'EOF'));
  t.deepEqual(runCommandLine(plan.target.instructions[0] as RunInstruction), { kind: 'file', name: 'EOF', data: '#!/usr/bin/env python3\nprint(1)\n' });
});

test('COPY <<EOF with a file descriptor-less heredoc and several sources', (t) => {
  const plan = buildPlan(df('FROM busybox', 'COPY <<one <<two a.txt /dst/', '1', 'one', '2', 'two'));
  const copy = plan.target.instructions[0] as CopyInstruction;
  t.deepEqual(
    copy.inlineSources.map((s) => [s.path, s.data]),
    [
      ['one', '1\n'],
      ['two', '2\n'],
    ],
  );
  t.deepEqual(copy.sources, ['a.txt']);
});

test('heredocs are not looked for in exec form or in other instructions', (t) => {
  const ast = parseDockerfile(df('FROM busybox', 'RUN ["echo", "<<EOF"]', 'ENV A=<<EOF', 'CMD echo'));
  t.is(ast.instructions.length, 4);
  t.deepEqual(
    ast.instructions.map((n) => n.heredocs.length),
    [0, 0, 0, 0],
  );
});

test('ONBUILD RUN <<EOF carries the heredoc into the trigger', (t) => {
  const plan = buildPlan(df('FROM busybox', 'ONBUILD RUN <<EOF', 'echo hi', 'EOF'));
  const ob = plan.target.instructions[0]!;
  t.is(ob.kind, 'ONBUILD');
  if (ob.kind !== 'ONBUILD') return;
  t.is(ob.expression, 'RUN <<EOF\necho hi\nEOF');
  t.is(ob.trigger.kind, 'RUN');
});

test('directives: escape=` switches the continuation token; syntax and check are recorded', (t) => {
  const ast = parseDockerfile(df('# syntax=docker/dockerfile:1', '# check=skip=JSONArgsRecommended', '# escape=`', 'FROM windows', 'RUN dir `', '  c:\\'));
  t.is(ast.escapeToken, '`');
  t.is(ast.directives.syntax, 'docker/dockerfile:1');
  t.is(ast.directives.check, 'skip=JSONArgsRecommended');
  t.is(dumpAST(ast), '(from "windows")\n(run "dir   c:\\\\")\n');
});

test('a directive after an instruction is an ordinary comment', (t) => {
  const ast = parseDockerfile(df('FROM a', '# escape=`', 'RUN a \\', 'b'));
  t.is(ast.escapeToken, '\\');
  t.is(ast.instructions[1]!.args[0], 'a b');
});

test('continuations skip comments and blank lines and warn about empty continuation lines', (t) => {
  const ast = parseDockerfile(df('FROM a', 'RUN one \\', '# comment', '', '  two'));
  t.is(ast.instructions[1]!.args[0], 'one   two');
  t.is(ast.warnings[0]?.rule, 'NoEmptyContinuation');
});

test('flags before arguments and -- ending them', (t) => {
  const ast = parseDockerfile(df('FROM a', 'COPY --from=b --chown="1:1" -- --weird /x'));
  t.deepEqual(ast.instructions[1]!.flags, ['--from=b', '--chown=1:1']);
  t.deepEqual(ast.instructions[1]!.args, ['--weird', '/x']);
});

test('CRLF line endings and a byte-order mark are accepted', (t) => {
  const ast = parseDockerfile('\ufeffFROM a\r\nRUN x \\\r\n y\r\n');
  t.is(dumpAST(ast), '(from "a")\n(run "x  y")\n');
});

/** Each bad input: one-line message with file:line:column and the offending text. */
const bad: [string, string, RegExp][] = [
  ['unknown instruction', df('FROM a', 'FOO bar'), /^Dockerfile:2:1: unknown instruction: FOO/],
  ['unknown instruction indented', df('FROM a', '   FOOBAR x'), /^Dockerfile:2:4: unknown instruction: FOOBAR/],
  ['empty Dockerfile', '', /^Dockerfile:1:1: file with no instructions/],
  ['only comments', df('# hi', '# there'), /^Dockerfile:\d+:1: file with no instructions/],
  ['ENV without a value', df('FROM a', 'ENV PATH'), /^Dockerfile:2:\d+: ENV must have two arguments/],
  ['ENV mixing forms', df('FROM a', 'ENV a=1 b'), /^Dockerfile:2:9: Syntax error - can't find = in "b"/],
  ['FROM missing', df('RUN echo hi'), /^Dockerfile:1:1: RUN before the first FROM/],
  ['only ARG, no FROM', df('ARG x=1'), /^Dockerfile:1:1: the Dockerfile contains no stages to build/],
  ['unknown flag', df('FROM a', 'COPY --form=b x /y'), /^Dockerfile:2:6: unknown flag: --form/],
  ['flag on an instruction without flags', df('FROM a', 'ENV --x=1 a=b'), /^Dockerfile:2:5: unknown flag: --x \(ENV takes no flags\)/],
  ['bool flag with a bad value', df('FROM a', 'COPY --link=maybe x /y'), /^Dockerfile:2:6: expecting boolean value for flag --link, not: maybe/],
  ['string flag without a value', df('FROM a', 'COPY --from x /y'), /^Dockerfile:2:6: missing a value on flag: --from/],
  ['duplicate flag', df('FROM a', 'COPY --from=a --from=b x /y'), /^Dockerfile:2:15: duplicate flag specified: --from/],
  ['bad network', df('FROM a', 'RUN --network=bridge true'), /^Dockerfile:2:5: invalid network mode "bridge"/],
  ['bad mount type', df('FROM a', 'RUN --mount=type=nfs,target=/x true'), /^Dockerfile:2:\d+: unsupported mount type "nfs"/],
  ['bad mount key', df('FROM a', 'RUN --mount=type=cache,target=/x,colour=red true'), /^Dockerfile:2:34: unexpected key 'colour'/],
  ['bad chmod', df('FROM a', 'COPY --chmod=999 x /y'), /^Dockerfile:2:6: invalid --chmod=999/],
  ['nested JSON', df('FROM a', 'CMD ["a", ["b"]]'), /^Dockerfile:2:\d+: when using JSON array syntax, arrays must be comprised of strings only/],
  ['unterminated heredoc', df('FROM a', 'RUN <<EOF', 'echo'), /^Dockerfile:2:5: unterminated heredoc <<EOF/],
  ['bad stage name', df('FROM a AS 1st'), /^Dockerfile:1:11: invalid name for build stage: "1st"/],
  ['FROM with two words', df('FROM a b'), /^Dockerfile:1:1: FROM requires either one or three arguments/],
  ['duplicate escape directive', df('# escape=`', '# escape=\\', 'FROM a'), /^Dockerfile:2:1: only one escape parser directive/],
  ['bad escape directive', df('# escape=x', 'FROM a'), /^Dockerfile:1:\d+: invalid escape token 'x'/],
  ['healthcheck bad type', df('FROM a', 'HEALTHCHECK CONNECT x'), /^Dockerfile:2:13: unknown type "CONNECT" in HEALTHCHECK/],
  ['healthcheck bad duration', df('FROM a', 'HEALTHCHECK --interval=5 CMD x'), /^Dockerfile:2:\d+: time: missing unit in duration "5"/],
  ['SHELL not JSON', df('FROM a', 'SHELL bash -c'), /^Dockerfile:2:1: SHELL requires the arguments to be in JSON form/],
  ['bad variable syntax in ARG default', df('ARG X=${Y', 'FROM a'), /^Dockerfile:1:1: failed to process "\$\{Y": syntax error: missing '\}'/],
  ['COPY --from with a variable', df('FROM a', 'COPY --from=$X x /y'), /^Dockerfile:2:13: variable expansion is not supported for --from/],
  ['copy from a bad stage index', df('FROM a', 'COPY --from=5 x /y'), /^Dockerfile:2:13: invalid stage index 5/],
  ['ONBUILD FROM', df('FROM a', 'ONBUILD FROM b'), /^Dockerfile:2:9: FROM isn't allowed as an ONBUILD trigger/],
  [
    'unterminated quote',
    df('FROM a', 'COPY "a /b'),
    /^Dockerfile:2:6: failed to process ""a": unexpected end of statement while looking for matching double-quote/,
  ],
  ['bad substitution', df('FROM a', 'WORKDIR ${}'), /^Dockerfile:2:9: failed to process "\$\{\}": syntax error: bad substitution/],
  [
    'unterminated single quote in ENV',
    df('FROM a', "ENV X='abc"),
    /^Dockerfile:2:\d+: failed to process "'abc": unexpected end of statement while looking for matching single-quote/,
  ],
  ['COPY without destination', df('FROM a', 'COPY x'), /^Dockerfile:2:1: COPY requires at least two arguments/],
];

for (const [name, text, pattern] of bad) {
  test(`bad input is one line with file:line:column: ${name}`, (t) => {
    const err = t.throws(() => buildPlan(text), { instanceOf: DockerfileError });
    t.regex(err!.message, pattern);
    t.false(err!.message.includes('\n'));
    t.true(err!.line >= 1 && err!.column >= 1);
  });
}

test('errors name the file given', (t) => {
  const err = t.throws(() => parseDockerfile('FROM a\nENV X\n', { file: 'app/Dockerfile.dev' }), { instanceOf: DockerfileError });
  t.regex(err!.message, /^app\/Dockerfile\.dev:2:\d+: /);
});
