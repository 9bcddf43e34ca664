/**
 * dockerd's daemon.json as a source of registry settings: its registry-mirrors and insecure-registries
 * apply to pull, push and the builder after tsbuild's flags and config file, a bad file only warns, and
 * a docker.io pull and a build's FROM come through a mirror named only there. Every daemon.json here is
 * a temp file named by TSBUILD_DOCKER_DAEMON_JSON or the daemonJson option: the real
 * /etc/docker/daemon.json belongs to the dockerd other tests use.
 */
import test from 'ava';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { testWith } from './helpers/tools.js';
import { startDistribution, type RunningRegistry } from './helpers/distribution.js';
import { makeBusyboxImage, type FixtureImage } from './helpers/busybox-image.js';
import { tempDir } from './helpers/temp.js';
import { tsbuild } from './helpers/run.js';
import { Store } from '../store/index.js';
import {
  daemonJsonFromText,
  DOCKER_DAEMON_JSON,
  DOCKER_DAEMON_JSON_ENV,
  endpointsFor,
  loadRegistrySettings,
  readDaemonJson,
  RegistryClient,
  pushImage,
} from '../registry/client/index.js';

function writeFile(dir: string, name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** Settings from only the sources a test names, with the warnings collected. */
function settingsWith(sources: Parameters<typeof loadRegistrySettings>[0]): { settings: ReturnType<typeof loadRegistrySettings>; warnings: string[] } {
  const warnings: string[] = [];
  const settings = loadRegistrySettings({ configFile: false, registriesConf: false, daemonJson: false, ...sources, warn: (m) => warnings.push(m) });
  return { settings, warnings };
}

test('registry-mirrors and insecure-registries are validated as dockerd does; other dockerd keys are ignored', (t) => {
  const file = '/etc/docker/test-daemon.json';
  const parsed = daemonJsonFromText(
    JSON.stringify({
      'storage-driver': 'overlay2',
      'log-opts': { 'max-size': '10m' },
      'registry-mirrors': [
        'https://mirror.example/',
        'http://127.0.0.1:5000',
        'https://cache.example/dockerhub',
        'mirror.example:5000',
        'ftp://m.example',
        'https://m.example/?q=1',
        'https://user:pw@m.example',
        7,
      ],
      'insecure-registries': [
        'reg.example',
        'reg.example:5000',
        'http://plain.example:5000',
        '10.0.0.0/8',
        'fd00::/8',
        '::1',
        '[fe80::1]:5000',
        'ftp://x.example',
        'bad host',
        'reg.example:99999',
        '10.0.0.0/40',
        '-reg.example',
        'a/b',
      ],
    }),
    file,
  );
  t.deepEqual(parsed.mirrors, [{ location: 'https://mirror.example' }, { location: 'http://127.0.0.1:5000' }, { location: 'https://cache.example/dockerhub' }]);
  t.deepEqual(parsed.insecure, ['reg.example', 'reg.example:5000', 'plain.example:5000', '10.0.0.0/8', 'fd00::/8', '::1', '[fe80::1]:5000']);
  t.deepEqual(parsed.warnings, [
    `${file}: registry-mirrors[3]: invalid mirror "mirror.example:5000": no scheme: use http:// or https://; the entry is ignored`,
    `${file}: registry-mirrors[4]: invalid mirror "ftp://m.example": unsupported scheme "ftp": use http:// or https://; the entry is ignored`,
    `${file}: registry-mirrors[5]: invalid mirror "https://m.example/?q=1": a query or fragment is not allowed; the entry is ignored`,
    `${file}: registry-mirrors[6]: invalid mirror "https://user:pw@m.example": a username or password is not allowed in a mirror URL; the entry is ignored`,
    `${file}: registry-mirrors[7]: expected a string, not 7; the entry is ignored`,
    `${file}: insecure-registries[7]: "ftp://x.example" must not contain a scheme other than http:// or https://; the entry is ignored`,
    `${file}: insecure-registries[8]: "bad host" is not a host, host:port or CIDR; the entry is ignored`,
    `${file}: insecure-registries[9]: "reg.example:99999" has an invalid port "99999"; the entry is ignored`,
    `${file}: insecure-registries[10]: "10.0.0.0/40" is not a valid CIDR such as 10.0.0.0/8; the entry is ignored`,
    `${file}: insecure-registries[11]: "-reg.example" cannot begin or end with a hyphen; the entry is ignored`,
    `${file}: insecure-registries[12]: "a/b" is not a host, host:port or CIDR; the entry is ignored`,
  ]);
  // As dockerd: an empty file, a byte order mark and null lists are no settings, not errors.
  t.deepEqual(daemonJsonFromText('  \n', file), { mirrors: [], insecure: [], warnings: [] });
  t.deepEqual(daemonJsonFromText('\uFEFF{"registry-mirrors": null, "insecure-registries": ["r.example"]}', file), {
    mirrors: [],
    insecure: ['r.example'],
    warnings: [],
  });
});

test('a malformed daemon.json is one warning line naming the file (and key), never a failure', (t) => {
  const dir = tempDir();
  const broken = writeFile(dir, 'broken.json', '{\n  "registry-mirrors": ["http://127.0.0.1:5000"],\n}\n');
  const { settings, warnings } = settingsWith({ registryMirrors: ['http://flag.example'], daemonJson: broken });
  t.deepEqual(settings.mirrors, { 'docker.io': [{ location: 'http://flag.example' }] }, 'the other sources still apply');
  t.is(warnings.length, 1);
  t.regex(
    warnings[0]!,
    new RegExp(`^${broken.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: invalid JSON \\(.+\\); its registry-mirrors and insecure-registries are ignored$`),
  );
  t.false(warnings[0]!.includes('\n'), 'one line');

  const wrongType = writeFile(dir, 'type.json', '{"registry-mirrors": "http://127.0.0.1:5000", "insecure-registries": ["ok.example"]}');
  const typed = settingsWith({ daemonJson: wrongType });
  t.deepEqual(typed.warnings, [`${wrongType}: registry-mirrors must be a list of strings, not "http://127.0.0.1:5000"; it is ignored`]);
  t.deepEqual(typed.settings.insecureRegistries, ['ok.example'], 'the valid key still applies');

  const notObject = writeFile(dir, 'array.json', '["http://127.0.0.1:5000"]');
  t.deepEqual(settingsWith({ daemonJson: notObject }).warnings, [
    `${notObject}: expected a JSON object; its registry-mirrors and insecure-registries are ignored`,
  ]);
  t.deepEqual(settingsWith({ daemonJson: dir }).warnings, [`cannot read ${dir} (is a directory); its registry-mirrors and insecure-registries are ignored`]);
  // A file someone named and that is missing is worth a line; the default location missing is not.
  t.deepEqual(settingsWith({ daemonJson: join(dir, 'missing.json') }).warnings, [
    `cannot read ${join(dir, 'missing.json')} (no such file); its registry-mirrors and insecure-registries are ignored`,
  ]);
  t.deepEqual(readDaemonJson(join(dir, 'missing.json')).warnings, []);
});

test('precedence: flags, the tsbuild config file, daemon.json, registries.conf, then docker.io; insecure hosts from all of them', async (t) => {
  const dir = tempDir();
  const configFile = writeFile(dir, 'config.yaml', 'registry-mirrors:\n  - https://cfg-mirror.example\ninsecure-registries:\n  - cfg-insecure.example\n');
  const daemonJson = writeFile(
    dir,
    'daemon.json',
    JSON.stringify({
      // the flag's mirror again: it keeps its first place, it is not tried twice
      'registry-mirrors': ['https://daemon-mirror.example', 'http://flag-mirror:5000'],
      'insecure-registries': ['daemon-mirror.example', '192.168.0.0/16'],
    }),
  );
  const registriesConf = writeFile(dir, 'registries.conf', '[[registry]]\nlocation = "docker.io"\n[[registry.mirror]]\nlocation = "conf-mirror.example"\n');
  const { settings, warnings } = settingsWith({
    registryMirrors: ['http://flag-mirror:5000'],
    insecureRegistries: ['flag-insecure.example'],
    configFile,
    daemonJson,
    registriesConf,
  });
  t.deepEqual(warnings, []);
  const endpoints = await endpointsFor(settings, 'docker.io');
  t.deepEqual(
    endpoints.map((e) => [e.host, e.scheme, e.verifyTls, e.mirror]),
    [
      ['flag-mirror:5000', 'http', true, true],
      ['cfg-mirror.example', 'https', true, true],
      // daemon.json's insecure-registries cover its own mirror: TLS without verification, as dockerd
      ['daemon-mirror.example', 'https', false, true],
      ['conf-mirror.example', 'https', true, true],
      ['registry-1.docker.io', 'https', true, false],
    ],
  );
  for (const host of ['flag-insecure.example', 'cfg-insecure.example', '192.168.7.7:5000']) {
    const [own] = await endpointsFor(settings, host);
    t.false(own!.verifyTls, `${host} is insecure`);
  }
  // push: no mirrors, but daemon.json's insecure hosts still count
  t.deepEqual(
    (await endpointsFor(settings, '192.168.1.2:5000', { mirrors: false })).map((e) => [e.host, e.scheme]),
    [['192.168.1.2:5000', 'auto']],
  );

  // daemonJson: false turns the file off for callers and tests.
  const off = settingsWith({ configFile, daemonJson: false });
  t.deepEqual(
    off.settings.mirrors['docker.io']!.map((m) => m.location),
    ['https://cfg-mirror.example'],
  );
  t.false(off.settings.insecureRegistries.includes('192.168.0.0/16'));
});

test.serial(`${DOCKER_DAEMON_JSON_ENV} names the file read instead of ${DOCKER_DAEMON_JSON}; /dev/null reads none`, (t) => {
  const dir = tempDir();
  const file = writeFile(dir, 'daemon.json', '{"registry-mirrors": ["http://env-mirror.example:5000"], "insecure-registries": ["env.example"]}');
  const saved = process.env[DOCKER_DAEMON_JSON_ENV];
  try {
    process.env[DOCKER_DAEMON_JSON_ENV] = file;
    const warnings: string[] = [];
    const viaEnv = loadRegistrySettings({ configFile: false, registriesConf: false, warn: (m) => warnings.push(m) });
    t.deepEqual(viaEnv, { mirrors: { 'docker.io': [{ location: 'http://env-mirror.example:5000' }] }, insecureRegistries: ['env.example'] });
    // an explicit daemonJson beats the environment
    t.deepEqual(loadRegistrySettings({ configFile: false, registriesConf: false, daemonJson: false }), { mirrors: {}, insecureRegistries: [] });
    process.env[DOCKER_DAEMON_JSON_ENV] = '/dev/null';
    t.deepEqual(loadRegistrySettings({ configFile: false, registriesConf: false, warn: (m) => warnings.push(m) }), { mirrors: {}, insecureRegistries: [] });
    process.env[DOCKER_DAEMON_JSON_ENV] = join(dir, 'typo.json');
    loadRegistrySettings({ configFile: false, registriesConf: false, warn: (m) => warnings.push(m) });
    t.deepEqual(warnings, [`cannot read ${join(dir, 'typo.json')} (no such file); its registry-mirrors and insecure-registries are ignored`]);
  } finally {
    if (saved === undefined) delete process.env[DOCKER_DAEMON_JSON_ENV];
    else process.env[DOCKER_DAEMON_JSON_ENV] = saved;
  }
});

// End to end: the mirror is a local distribution holding what docker.io/library/busybox would be.
const withRegistry = testWith(['docker-registry']);
const withRunc = testWith(['docker-registry', 'runc']);
let mirror: RunningRegistry | undefined;
let image: FixtureImage;

/** An environment where only the given daemon.json names registry settings (no config file, registries.conf, credentials). */
function envWith(dir: string, daemonJson: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    DOCKER_CONFIG: join(dir, 'docker'),
    TSBUILD_CONFIG: '/dev/null',
    CONTAINERS_REGISTRIES_CONF: join(dir, 'none.conf'),
    [DOCKER_DAEMON_JSON_ENV]: daemonJson,
  };
}

/** A daemon.json as dockerd users have it: dockerd's own keys beside the mirror. */
function daemonJsonWithMirror(dir: string, mirrors: string[]): string {
  return writeFile(
    dir,
    'daemon.json',
    JSON.stringify({ 'storage-driver': 'overlay2', 'log-level': 'warn', 'registry-mirrors': mirrors, 'live-restore': true }, null, 2),
  );
}

withRegistry.before(async () => {
  mirror = await startDistribution();
  const seed = await Store.open(tempDir());
  image = await makeBusyboxImage(seed, `${mirror.host}/library/busybox:latest`);
  const client = new RegistryClient({ credentials: async () => undefined });
  await pushImage(client, seed, `${mirror.host}/library/busybox:latest`);
  client.close();
});
withRegistry.after.always(async () => {
  await mirror?.stop();
});

withRegistry('tsbuild pull busybox comes through a mirror named only in daemon.json (docker.io is offline)', async (t) => {
  const dir = tempDir();
  const env = envWith(dir, daemonJsonWithMirror(dir, [`${mirror!.url}/`]));
  const before = mirror!.logs().length;
  const pull = await tsbuild(join(dir, 'root'), ['pull', 'busybox'], { env });
  t.is(pull.code, 0, pull.stderr);
  t.regex(pull.stdout, /busybox:latest\n$/);
  t.notRegex(pull.stderr, /warning/, 'a valid daemon.json with dockerd keys warns about nothing');
  t.regex(mirror!.logs().slice(before), /GET \/v2\/library\/busybox\/manifests\/latest HTTP\/1.1" 200/);
  const store = await Store.open(join(dir, 'root'));
  t.is((await store.images.get('docker.io/library/busybox:latest')).digest, image.digest);
  t.true(await store.blobs.has(image.manifest.layers[0]!.digest));

  // The control: without daemon.json the same pull has only docker.io, which is not reachable here.
  const without = await tsbuild(join(dir, 'root2'), ['pull', 'busybox'], { env: envWith(dir, '/dev/null') });
  t.not(without.code, 0);
  t.regex(without.stderr, /registry-1\.docker\.io/);
});

withRegistry('flags and the tsbuild config file come before daemon.json mirrors; a bad daemon.json entry warns and the pull goes on', async (t) => {
  const dir = tempDir();
  const empty = await startDistribution();
  try {
    // daemon.json: a bad entry, then the mirror that has busybox
    const env = envWith(dir, daemonJsonWithMirror(dir, ['mirror.example:5000', mirror!.url]));
    writeFile(dir, 'config.yaml', `registry-mirrors:\n  - ${empty.url}/from-config\n`);
    env.TSBUILD_CONFIG = join(dir, 'config.yaml');
    const pull = await tsbuild(join(dir, 'root'), ['pull', '--registry-mirror', `${empty.url}/from-flag`, 'busybox'], { env });
    t.is(pull.code, 0, pull.stderr);
    t.is(
      pull.stderr
        .split('\n')
        .filter((l) => l.includes('warning'))
        .join('\n'),
      `tsbuild: warning: ${env[DOCKER_DAEMON_JSON_ENV]}: registry-mirrors[0]: invalid mirror "mirror.example:5000": no scheme: use http:// or https://; the entry is ignored`,
    );
    // The flag's mirror was asked, then the config file's, and only then daemon.json's served the image.
    const asked = [...empty.logs().matchAll(/GET \/v2\/(from-\w+)\/library\/busybox\/manifests\/latest/g)].map((m) => m[1]);
    t.deepEqual([...new Set(asked)], ['from-flag', 'from-config']);
    const store = await Store.open(join(dir, 'root'));
    t.is((await store.images.get('docker.io/library/busybox:latest')).digest, image.digest);

    // Unparsable JSON: a warning, and a pull that needs nothing from the file still works.
    const broken = writeFile(dir, 'broken.json', '{"registry-mirrors": [');
    const direct = await tsbuild(join(dir, 'root3'), ['pull', '-q', `${mirror!.host}/library/busybox:latest`], { env: envWith(dir, broken) });
    t.is(direct.code, 0, direct.stderr);
    t.regex(
      direct.stderr,
      new RegExp(
        `^tsbuild: warning: ${broken.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: invalid JSON \\(.+\\); its registry-mirrors and insecure-registries are ignored\\n$`,
      ),
    );
  } finally {
    await empty.stop();
  }
});

withRunc('tsbuild build: FROM busybox comes through the daemon.json mirror; a bad entry beside it is a warning, not a failed build', async (t) => {
  const dir = tempDir();
  const context = join(dir, 'context');
  mkdirSync(context);
  // RUN proves the base's layer arrived and unpacked: its /bin/sh runs.
  writeFile(context, 'Dockerfile', 'FROM busybox\nRUN echo via-daemon-json > /marker && test -x /bin/sh\n');
  const daemonJson = daemonJsonWithMirror(dir, ['ftp://mirror.example', mirror!.url]);
  const env = envWith(dir, daemonJson);
  const before = mirror!.logs().length;
  const root = join(dir, 'root');
  const built = await tsbuild(root, ['build', '--progress', 'plain', '-t', 'from-daemon-json:v1', context], { env });
  t.is(built.code, 0, built.stderr);
  t.true(
    built.stderr
      .split('\n')
      .includes(
        `[Warning] ${daemonJson}: registry-mirrors[0]: invalid mirror "ftp://mirror.example": unsupported scheme "ftp": use http:// or https://; the entry is ignored`,
      ),
    built.stderr,
  );
  t.regex(mirror!.logs().slice(before), /GET \/v2\/library\/busybox\/manifests\/latest HTTP\/1.1" 200/);
  const inspect = await tsbuild(root, ['inspect', 'from-daemon-json:v1'], { env });
  t.is(inspect.code, 0, inspect.stderr);
  const out = JSON.parse(inspect.stdout) as { DiffIDs: string[] };
  t.is(out.DiffIDs[0], image.diffId, "the base layer is the mirror's busybox");
  t.is(out.DiffIDs.length, 2);
});
