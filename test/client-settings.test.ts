import test from 'ava';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './helpers/temp.js';
import {
  endpointsFor,
  InsecureMatcher,
  loadRegistrySettings,
  parseRegistriesConf,
  readRegistriesConf,
  RegistriesConfError,
  parseChallenges,
  mergeScopes,
} from '../registry/client/index.js';

test('registries.conf is read as TOML: arrays of tables, inline tables, escapes; keys tsbuild does not use are left alone', (t) => {
  const dir = tempDir();
  const conf = join(dir, 'registries.conf');
  writeFileSync(
    conf,
    [
      '# comment',
      'unqualified-search-registries = ["docker.io", "quay.io"] # trailing',
      'short-name-mode = "enforcing"',
      '[[registry]]',
      'prefix = "docker.io"',
      "location = 'docker.io'",
      'insecure = false',
      '[[registry.mirror]]',
      'location = "mirror.local:5000/hub"',
      'insecure = true',
      '[[registry.mirror]]',
      'location = "other.local"',
      '[[registry]]',
      'location = "10.1.2.3:5000"',
      'insecure = true',
      'blocked = true',
      '[aliases]',
      '  "alpine" = "docker.io/library/alpine"',
      'nested.key = { a = 1, b = [1, 2,',
      '  3] }',
      'escaped = "tab\\there \\u00e9"',
    ].join('\n'),
  );
  t.deepEqual(readRegistriesConf(conf), {
    mirrors: { 'docker.io': [{ location: 'mirror.local:5000/hub', insecure: true }, { location: 'other.local' }] },
    insecure: ['10.1.2.3:5000'],
    blocked: ['10.1.2.3:5000'],
  });
});

test('registries.conf: what the hand-written reader got wrong (inf, duplicate tables, dates, multi-line strings)', (t) => {
  // inf is Infinity (it was NaN); nan stays NaN
  const numbers = parseRegistriesConf('up = inf\ndown = -inf\nnot = nan\n', 'numbers.conf');
  t.is(numbers.up, Infinity);
  t.is(numbers.down, -Infinity);
  t.true(Number.isNaN(numbers.not));
  // a table defined twice is refused, in one line naming the file and the line
  const dir = tempDir();
  const twice = join(dir, 'twice.conf');
  writeFileSync(twice, '[aliases]\n"a" = "docker.io/library/a"\n[aliases]\n"b" = "docker.io/library/b"\n');
  const e = t.throws(() => readRegistriesConf(twice));
  t.true(e instanceof RegistriesConfError, e?.message);
  t.true(e!.message.startsWith(`${twice}:3:`), e!.message);
  t.regex(e!.message, /redefine.*; fix the file, or set CONTAINERS_REGISTRIES_CONF to another one$/);
  t.false(e!.message.includes('\n'));
  t.throws(() => parseRegistriesConf('a = 1\na = 2', 'keys.conf'), { instanceOf: RegistriesConfError, message: /^keys\.conf:2:\d+: / });
  // dates and multi-line strings are TOML and are accepted (they were refused)
  const other = join(dir, 'other.conf');
  const multiLine = ['note = """', 'kept by', 'the lab"""'];
  writeFileSync(
    other,
    [
      'written = 2024-05-27T07:32:00Z',
      'day = 2024-05-27',
      ...multiLine,
      "raw = '''C:\\x'''",
      '[[registry]]',
      'location = "lab.example:5000"',
      'insecure = true',
    ].join('\n'),
  );
  t.deepEqual(readRegistriesConf(other).insecure, ['lab.example:5000']);
  const doc = parseRegistriesConf(['day = 2024-05-27', ...multiLine].join('\n'), 'dates.conf');
  t.true(doc.day instanceof Date);
  t.is(doc.note, 'kept by\nthe lab');
});

test('registries.conf and its drop-ins give mirrors and insecure hosts; settings merge flags, config file and conf', async (t) => {
  const dir = tempDir();
  const conf = join(dir, 'registries.conf');
  writeFileSync(conf, '[[registry]]\nlocation = "docker.io"\n[[registry.mirror]]\nlocation = "mirror.local:5000"\ninsecure = true\n');
  mkdirSync(`${conf}.d`);
  writeFileSync(join(`${conf}.d`, '10-lab.conf'), '[[registry]]\nlocation = "lab.example:5000"\ninsecure = true\n');
  writeFileSync(join(`${conf}.d`, 'shortnames.conf'), '[aliases]\n"x" = "docker.io/library/x"\n');
  const parsed = readRegistriesConf(conf);
  t.deepEqual(parsed.mirrors, { 'docker.io': [{ location: 'mirror.local:5000', insecure: true }] });
  t.deepEqual(parsed.insecure, ['lab.example:5000']);

  const configFile = join(dir, 'config.yaml');
  writeFileSync(configFile, 'registry-mirrors:\n  - https://cfg-mirror.example\ninsecure-registries:\n  - 10.0.0.0/8\n');
  const settings = loadRegistrySettings({
    registryMirrors: ['http://flag-mirror:5000'],
    insecureRegistries: ['flag.example'],
    configFile,
    registriesConf: conf,
    daemonJson: false,
  });
  const endpoints = await endpointsFor(settings, 'docker.io');
  t.deepEqual(
    endpoints.map((e) => [e.host, e.scheme, e.verifyTls, e.mirror]),
    [
      ['flag-mirror:5000', 'http', true, true],
      ['cfg-mirror.example', 'https', true, true],
      ['mirror.local:5000', 'auto', false, true],
      ['registry-1.docker.io', 'https', true, false],
    ],
  );
  // pushes never go to mirrors
  t.is((await endpointsFor(settings, 'docker.io', { mirrors: false })).length, 1);
  const lab = await endpointsFor(settings, 'lab.example:5000');
  t.deepEqual(
    lab.map((e) => [e.scheme, e.verifyTls]),
    [['auto', false]],
  );
  t.throws(() => loadRegistrySettings({ registryMirrors: ['ftp://x'], configFile: false, registriesConf: false, daemonJson: false }), {
    message: /invalid registry mirror "ftp:\/\/x" \(--registry-mirror\)/,
  });
});

test('insecure registries: hosts, host:port, CIDRs and loopback by default', async (t) => {
  const m = new InsecureMatcher({ mirrors: {}, insecureRegistries: ['reg.example', 'other.example:5000', '192.168.0.0/16', 'http://scheme.example:1/'] });
  t.true(await m.isInsecure('reg.example:443'));
  t.true(await m.isInsecure('other.example:5000'));
  t.false(await m.isInsecure('other.example:6000'));
  t.true(await m.isInsecure('192.168.4.5:5000'));
  t.false(await m.isInsecure('10.0.0.1'));
  t.true(await m.isInsecure('scheme.example:1'));
  t.true(await m.isInsecure('localhost:5000'));
  t.true(await m.isInsecure('127.3.4.5:80'));
  t.true(await m.isInsecure('[::1]:5000'));
  t.false(await new InsecureMatcher({ mirrors: {}, insecureRegistries: [], insecureLoopback: false }).isInsecure('127.0.0.1:5000'));
});

test('WWW-Authenticate challenges and token scopes', (t) => {
  t.deepEqual(parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"'), [
    { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' } },
  ]);
  t.deepEqual(parseChallenges(['Basic realm="Registry Realm"', 'Bearer realm=https://x/t, service=y']), [
    { scheme: 'basic', params: { realm: 'Registry Realm' } },
    { scheme: 'bearer', params: { realm: 'https://x/t', service: 'y' } },
  ]);
  t.deepEqual(mergeScopes(['repository:a:push', 'repository:b:pull', 'repository:a:pull']), ['repository:a:pull,push', 'repository:b:pull']);
});
