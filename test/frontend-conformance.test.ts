/**
 * BuildKit's Dockerfile conformance corpus (../shared/conformance/dockerfile): parse trees,
 * rejected files, and the shell-word expansion tables. Skips when the corpus is absent.
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDockerfile, dumpAST, DockerfileError, processWord, processWords } from '../builder/frontend/index.js';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const corpus = path.resolve(projectRoot, '../shared/conformance/dockerfile');
const present = fs.existsSync(corpus);
const maybe = present ? test : test.skip;
if (!present) {
  test.skip(`Dockerfile conformance corpus not found at ${corpus} (../shared next to the project): corpus tests skipped`, (t) => {
    t.pass();
  });
}

function dirs(sub: string): string[] {
  return present ? fs.readdirSync(path.join(corpus, sub)).sort() : [];
}

for (const name of dirs('testfiles')) {
  maybe(`testfiles/${name} dumps to its result`, (t) => {
    const dir = path.join(corpus, 'testfiles', name);
    const text = fs.readFileSync(path.join(dir, 'Dockerfile'), 'utf8');
    const expected = fs.readFileSync(path.join(dir, 'result'), 'utf8');
    const want =
      expected
        .split('\n')
        .filter((l, i, a) => !(i === a.length - 1 && l === ''))
        .join('\n') + '\n';
    t.is(dumpAST(parseDockerfile(text)), want);
  });
}

for (const name of dirs('testfiles-negative')) {
  maybe(`testfiles-negative/${name} is rejected`, (t) => {
    const text = fs.readFileSync(path.join(corpus, 'testfiles-negative', name, 'Dockerfile'), 'utf8');
    const err = t.throws(() => parseDockerfile(text), { instanceOf: DockerfileError });
    t.regex(err!.message, /^Dockerfile:\d+:\d+: \S/);
    t.false(err!.message.includes('\n'));
  });
}

const envVarEnv = { PWD: '/home', SHELL: 'bash', KOREAN: '한국어', NULL: '' };

maybe('envVarTest: every A and U line expands as expected (ProcessWord)', (t) => {
  const lines = fs.readFileSync(path.join(corpus, 'envVarTest'), 'utf8').split('\n');
  let checked = 0;
  const failures: string[] = [];
  for (const raw of lines) {
    if (raw.trim() === '' || raw.startsWith('#')) continue;
    const parts = raw.split('|');
    const platform = parts[0]!.trim();
    if (platform === 'W') continue;
    const input = parts[1]!.trim();
    const expected = parts.slice(2).join('|').trim();
    checked++;
    let got: string;
    try {
      got = processWord(input, envVarEnv);
    } catch {
      got = 'error';
    }
    if (got !== expected) failures.push(`${input} → ${JSON.stringify(got)}, want ${JSON.stringify(expected)}`);
  }
  t.deepEqual(failures, []);
  t.true(checked > 200);
});

maybe('wordsTest: every line splits into the expected words (ProcessWords)', (t) => {
  const lines = fs.readFileSync(path.join(corpus, 'wordsTest'), 'utf8').split('\n');
  const env: Record<string, string> = {};
  let checked = 0;
  const failures: string[] = [];
  for (const raw of lines) {
    if (raw.trim() === '' || raw.startsWith('#')) continue;
    if (raw.startsWith('ENV ')) {
      const kv = raw.slice(4);
      const eq = kv.indexOf('=');
      env[kv.slice(0, eq)] = kv.slice(eq + 1);
      continue;
    }
    const bar = raw.indexOf('|');
    const input = raw.slice(0, bar).trim();
    const expected = raw.slice(bar + 1).replace(/^ +/, '');
    checked++;
    let got: string;
    try {
      got = processWords(input, env).join(',');
    } catch {
      got = 'error';
    }
    if (got !== expected) failures.push(`${input} → ${JSON.stringify(got)}, want ${JSON.stringify(expected)}`);
  }
  t.deepEqual(failures, []);
  t.true(checked > 20);
});
