/**
 * File names are bytes: names that are not UTF-8 (latin-1 `caf\351.txt`, a lone 0xFF) keep their exact
 * bytes through context walking, COPY (plain, wildcard, --from), RUN snapshots, base-image unpacking
 * and export, as in docker (Go strings are bytes).
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { testWith } from './helpers/tools.js';
import { run, tsbuild } from './helpers/run.js';
import { tempDir } from './helpers/temp.js';
import { busyboxRootfsTar } from './helpers/busybox-image.js';
import { buildBoth, DOCKER, dockerRun, loadBusyboxIntoDocker, removeImages, storeWithBusybox } from './helpers/build-compare.js';
import { randomBytes } from 'node:crypto';
import { BuildContext } from '../builder/context/index.js';
import { byteOrder, decodeName, encodeName } from '../builder/snapshot/index.js';

const test = testWith(['runc', 'dockerd']);

const BASE = 'tsbuild-odd-names-base:latest';
const bytes = (s: string) => Buffer.from(s, 'latin1');

let root: string;

/** A base whose layer (written by GNU tar) holds `/base-\376`, in dockerd and in tsbuild's store. */
test.before(async () => {
  await loadBusyboxIntoDocker();
  root = await storeWithBusybox();
  const dir = tempDir('odd-base-');
  const rootfs = join(dir, 'rootfs');
  await fs.mkdir(rootfs);
  await fs.writeFile(join(dir, 'busybox.tar'), await busyboxRootfsTar());
  execFileSync('tar', ['-xpf', join(dir, 'busybox.tar'), '-C', rootfs]);
  await fs.writeFile(Buffer.concat([bytes(rootfs + '/base-'), Buffer.from([0xfe])]), 'from the base\n');
  execFileSync('tar', ['--numeric-owner', '-cf', join(dir, 'base.tar'), '-C', rootfs, '.']);
  const imported = await run(DOCKER, ['import', join(dir, 'base.tar'), BASE]);
  if (imported.code !== 0) throw new Error(`docker import failed: ${imported.stderr}`);
  const saved = await run(DOCKER, ['save', '-o', join(dir, 'base-image.tar'), BASE]);
  if (saved.code !== 0) throw new Error(`docker save failed: ${saved.stderr}`);
  const loaded = await tsbuild(root, ['load', '-i', join(dir, 'base-image.tar')]);
  if (loaded.code !== 0) throw new Error(`tsbuild load failed: ${loaded.stderr}`);
});

test.after.always(async () => {
  await removeImages(BASE);
});

async function oddContext(dockerfile: string): Promise<string> {
  const dir = tempDir('odd-ctx-');
  await fs.writeFile(bytes(`${dir}/caf\xe9.txt`), 'latin-1 name\n');
  await fs.mkdir(bytes(`${dir}/d\xff`));
  await fs.writeFile(bytes(`${dir}/d\xff/x`), 'in an odd dir\n');
  await fs.writeFile(join(dir, 'ok-café.txt'), 'utf-8 name\n');
  await fs.writeFile(join(dir, 'Dockerfile'), dockerfile);
  return dir;
}

/** `find` output as bytes in hex, so any name change shows. */
const FIND = 'find /ctx /wild /from-stage /made /base-* /run-* | sort | od -An -tx1 | tr -d " \\n"';

function expectedHex(): string {
  const names = [
    '/ctx',
    '/ctx/Dockerfile',
    '/ctx/caf\xe9.txt',
    '/ctx/d\xff',
    '/ctx/d\xff/x',
    '/ctx/ok-caf\xc3\xa9.txt',
    '/wild',
    '/wild/caf\xe9.txt',
    '/from-stage',
    '/from-stage/base-\xfe',
    '/made',
    '/made/caf\xe9.txt',
    '/base-\xfe',
    '/run-\xff',
  ].map(bytes);
  return Buffer.concat(names.sort(Buffer.compare).map((n) => Buffer.concat([n, Buffer.from('\n')]))).toString('hex');
}

test('the context walk and its checksums read every odd name and tell names apart by their bytes', async (t) => {
  const dir = await oddContext('FROM scratch\n');
  const rels: string[] = [];
  for await (const e of (await BuildContext.open(dir)).walk('.')) rels.push(e.rel);
  t.is(rels.length, 6);
  // checksumming reads every file: a name that lost its bytes cannot be opened
  const before = await (await BuildContext.open(dir)).checksum(['.']);
  await fs.rename(bytes(`${dir}/caf\xe9.txt`), bytes(`${dir}/caf\xe8.txt`));
  t.not(await (await BuildContext.open(dir)).checksum(['.']), before, 'another byte, another checksum');
});

test.serial('names that are not UTF-8 survive COPY, wildcards, RUN, the base image and export, as in docker', async (t) => {
  const ctx = await oddContext(
    [
      `FROM ${BASE}`,
      'COPY . /ctx/',
      'COPY caf* /wild/',
      `COPY --from=${BASE} /base-* /from-stage/`,
      'RUN touch "/run-$(printf \'\\377\')" && mkdir /made && cp /ctx/caf* /made/',
      `RUN ${FIND} > /names-at-build`,
      '',
    ].join('\n'),
  );
  const both = await buildBoth(root, ctx, 'odd-names');
  try {
    t.deepEqual({ onlyOurs: both.onlyOurs, onlyDocker: both.onlyDocker }, { onlyOurs: [], onlyDocker: [] });
    const ours = await dockerRun(both.ours, ['sh', '-c', FIND]);
    const theirs = await dockerRun(both.theirs, ['sh', '-c', FIND]);
    t.is(theirs.stdout, expectedHex(), 'docker keeps the bytes');
    t.is(ours.stdout, expectedHex(), `tsbuild's exported image keeps the bytes: ${ours.stderr}`);
    t.is((await dockerRun(both.ours, ['cat', '/names-at-build'])).stdout, expectedHex(), 'the RUN step saw them too');
  } finally {
    await removeImages(both.ours, both.theirs);
  }
});

test('a name round-trips to its exact bytes, whatever they are; UTF-8 names stay ordinary strings', (t) => {
  t.is(decodeName(Buffer.from('café/ø')), 'café/ø');
  const samples = [
    Buffer.from([0x63, 0x61, 0x66, 0xe9]),
    Buffer.from([0xff]),
    Buffer.from([0xed, 0xb2, 0x80]),
    Buffer.from([0xc3]),
    Buffer.from([0xf0, 0x9f, 0x98, 0x80, 0x80]),
  ];
  for (let i = 0; i < 200; i++) samples.push(randomBytes(1 + (i % 9)));
  for (const b of samples) t.true(encodeName(decodeName(b)).equals(b), b.toString('hex'));
  t.is(byteOrder(decodeName(Buffer.from([0x61, 0xff])), 'b'), -1, 'sorted by bytes');
});
