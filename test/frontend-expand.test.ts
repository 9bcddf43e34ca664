/** Shell-word expansion beyond the corpus tables: pattern forms, matches, options. */
import test from 'ava';
import { processWord, processWordWithMatches, processWords, expandWord } from '../builder/frontend/index.js';

const env = { V: 'abc.tar.gz', P: '/usr/local/bin', E: '', S: 'a b  c' };

const cases: [string, string][] = [
  ['${V%.*}', 'abc.tar'],
  ['${V%%.*}', 'abc'],
  ['${V#*.}', 'tar.gz'],
  ['${V##*.}', 'gz'],
  ['${P##*/}', 'bin'],
  ['${P%/*}', '/usr/local'],
  ['${V/./-}', 'abc-tar.gz'],
  ['${V//./-}', 'abc-tar-gz'],
  ['${V/a?c/X}', 'X.tar.gz'],
  ['${P//\\//:}', ':usr:local:bin'],
  ['${V#nomatch}', 'abc.tar.gz'],
  ['${MISSING%x}', ''],
  ['${E-def}', ''],
  ['${E:-def}', 'def'],
  ['${E+set}', 'set'],
  ['${E:+set}', ''],
  ['pre${V:+[$V]}post', 'pre[abc.tar.gz]post'],
];

for (const [input, want] of cases) {
  test(`expands ${input}`, (t) => {
    t.is(processWord(input, env), want);
  });
}

test('errors: ${X:?}, ${X:#p} and unterminated forms', (t) => {
  t.throws(() => processWord('${MISSING:?needs a value}', env), { message: /MISSING: needs a value/ });
  t.throws(() => processWord('${V:#a}', env), { message: /unsupported modifier \(:#\)/ });
  t.throws(() => processWord('${V/a', env), { message: /missing '\/' in \$\{\}/ });
  t.throws(() => processWord('${V%a', env), { message: /missing '}'/ });
});

test('matched and unmatched names are reported', (t) => {
  const r = processWordWithMatches('$V ${NOPE:-x} ${E}', env);
  t.deepEqual([...r.matched].sort(), ['E', 'V']);
  t.deepEqual([...r.unmatched], ['NOPE']);
});

test('words split after expansion unless quoted', (t) => {
  t.deepEqual(processWords('$S "$S" x', env), ['a', 'b', 'c', 'a b  c', 'x']);
});

test('skipUnsetEnv leaves unknown references as written (heredoc detection)', (t) => {
  t.is(processWord('$A ${B} ${C:-d} $V', env, { skipUnsetEnv: true }), '$A ${B} ${C:-d} abc.tar.gz');
});

test('expandWord accepts a Map or a lookup function', (t) => {
  t.is(
    expandWord(
      '$A-$B',
      new Map([
        ['A', '1'],
        ['B', '2'],
      ]),
    ),
    '1-2',
  );
  t.is(
    expandWord('$A', (n) => (n === 'A' ? 'fn' : undefined)),
    'fn',
  );
});
