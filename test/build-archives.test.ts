/**
 * Archives keep what layers keep: ADD unpacks with the layer tar reader, xattr rules and decompression
 * (file capabilities survive), and every tar tsbuild writes puts a field that does not fit the ustar
 * header into a PAX record (checked with GNU tar, an independent reader).
 */
import { execFileSync } from 'node:child_process';
import { promises as fs, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { commitUpperDir, encodeHeader, type TarHeader } from '../builder/snapshot/index.js';
import { Store } from '../store/index.js';
import { TarFileWriter } from '../builder/image/tar-writer.js';
import { testWith } from './helpers/tools.js';
import { tempDir } from './helpers/temp.js';
import { buildBoth, dockerRun, loadBusyboxIntoDocker, removeImages, storeWithBusybox } from './helpers/build-compare.js';

const test = testWith(['runc', 'dockerd']);

/** VFS_CAP_REVISION_2 | effective, permitted = cap_net_bind_service (10) + cap_net_raw (13). */
const NET_CAPS = Buffer.from([0x01, 0x00, 0x00, 0x02, 0x00, 0x24, 0x00, 0x00, ...new Array<number>(12).fill(0)]);

function pad(n: number): Buffer {
  return Buffer.alloc((512 - (n % 512)) % 512);
}

/** A tar written with the project's own header encoder. */
function tarOf(entries: Array<{ header: TarHeader; body?: Buffer }>): Buffer {
  const parts: Buffer[] = [];
  for (const { header, body } of entries) {
    parts.push(encodeHeader(header));
    if (body) parts.push(body, pad(body.length));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

const base = { mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 1_600_000_000 };
const LONG_DIR = 'a-directory-name-that-is-long/'.repeat(5);

function archive(): Buffer {
  const busybox = readFileSync('/bin/busybox');
  return tarOf([
    { header: { ...base, name: 'bin/', type: 'directory' } },
    { header: { ...base, name: 'bin/busybox', type: 'file', size: busybox.length, xattrs: new Map([['security.capability', NET_CAPS]]) }, body: busybox },
    { header: { ...base, name: LONG_DIR, type: 'directory' } },
    { header: { ...base, mode: 0o644, name: `${LONG_DIR}file-with-a-long-name.txt`, type: 'file', size: 3 }, body: Buffer.from('hi\n') },
    { header: { ...base, mode: 0o777, name: 'long-link', type: 'symlink', linkname: `/${LONG_DIR}file-with-a-long-name.txt` } },
    { header: { ...base, mode: 0o644, name: 'big-ids', type: 'file', uid: 3_000_000, gid: 2_500_000, size: 3 }, body: Buffer.from('id\n') },
    { header: { ...base, mode: 0o644, name: 'before-1970', type: 'file', mtime: -86_400, size: 3 }, body: Buffer.from('old') },
    { header: { ...base, mode: 0o644, name: 'after-2242', type: 'file', mtime: 10_000_000_000, size: 3 }, body: Buffer.from('new') },
    {
      header: { ...base, mode: 0o644, name: 'owned', type: 'file', uname: 'jürgen', gname: 'grüppe', uid: 1000, gid: 1000, size: 3 },
      body: Buffer.from('own'),
    },
  ]);
}

test('headers that do not fit ustar carry PAX records GNU tar reads back', async (t) => {
  const dir = tempDir('pax-');
  const file = join(dir, 'fields.tar');
  await fs.writeFile(file, archive());
  const listing = execFileSync('tar', ['--list', '--verbose', '--numeric-owner', '--full-time', '--utc', '-f', file], {
    env: { ...process.env, TZ: 'UTC' },
  }).toString();
  t.regex(listing, new RegExp(`${LONG_DIR}file-with-a-long-name\\.txt`));
  t.regex(listing, new RegExp(`long-link -> /${LONG_DIR}file-with-a-long-name\\.txt`));
  t.regex(listing, /3000000\/2500000 .* big-ids/);
  t.regex(listing, /1969-12-31 00:00:00 before-1970/);
  t.regex(listing, /2286-11-20 17:46:40 after-2242/);
  const named = execFileSync('tar', ['--list', '--verbose', '--full-time', '-f', file]).toString();
  t.regex(named, /jürgen\/grüppe .* owned/);
  // A size beyond the 11 octal digits of ustar (8 GiB) goes into a PAX record too.
  const huge = encodeHeader({ ...base, name: 'huge', type: 'file', size: 2 ** 33 + 1 });
  t.true(huge.includes('size=8589934593\n'));
});

test('image archives (save, -o type=docker) are written with the same encoder: long names survive', async (t) => {
  const dir = tempDir('archive-writer-');
  const file = join(dir, 'out.tar');
  const writer = new TarFileWriter(file);
  const name = `blobs/${'x'.repeat(150)}/ünïcode-${'y'.repeat(90)}`;
  await writer.file(name, 'body');
  const big = new PassThrough();
  const streamed = writer.stream('streamed', 4, big);
  big.end('data');
  await streamed;
  await writer.finish();
  const listing = execFileSync('tar', ['--list', '-f', file]).toString().split('\n');
  t.true(listing.includes(name), listing.join('\n'));
  t.true(listing.includes('streamed'));
  t.is(execFileSync('tar', ['-xOf', file, name]).toString(), 'body');
});

test('a layer of files dated before 1970 or after 2242 records their times in PAX records', async (t) => {
  const store = await Store.open(tempDir());
  const upper = join(tempDir('upper-'), 'upper');
  await fs.mkdir(upper);
  await fs.writeFile(join(upper, 'old'), 'old');
  await fs.writeFile(join(upper, 'new'), 'new');
  // (Node's utimes takes a negative time for "now")
  execFileSync('touch', ['-h', '-d', '@-86400', join(upper, 'old')]);
  execFileSync('touch', ['-h', '-d', '@10000000000', join(upper, 'new')]);
  const layer = await commitUpperDir(store, { upper, lowers: [], compression: 'none' });
  const file = join(tempDir('layer-'), 'layer.tar');
  await fs.writeFile(file, await store.blobs.readBuffer(layer.descriptor.digest));
  const listing = execFileSync('tar', ['--list', '--verbose', '--full-time', '--utc', '-f', file], { env: { ...process.env, TZ: 'UTC' } }).toString();
  t.regex(listing, /2286-11-20 17:46:40 new/);
  t.regex(listing, /1969-12-31 00:00:00 old/);
});

test.serial('ADD of a tar keeps security.capability: the file runs with cap_net_raw,cap_net_bind_service+ep as uid 1000, as in docker', async (t) => {
  await loadBusyboxIntoDocker();
  const root = await storeWithBusybox();
  const ctx = tempDir('caps-ctx-');
  await fs.writeFile(join(ctx, 'caps.tar'), archive());
  await fs.writeFile(
    join(ctx, 'Dockerfile'),
    'FROM busybox\nADD caps.tar /opt/\nRUN stat -c "%n %Y %u:%g" /opt/before-1970 /opt/after-2242 /opt/big-ids > /opt/times\nUSER 1000\nCMD ["/opt/bin/busybox", "grep", "CapEff", "/proc/self/status"]\n',
  );
  const both = await buildBoth(root, ctx, 'add-caps');
  try {
    t.deepEqual({ onlyOurs: both.onlyOurs, onlyDocker: both.onlyDocker }, { onlyOurs: [], onlyDocker: [] });
    const opt = both.ourListing.filter((l) => l.startsWith('/opt/'));
    t.true(
      opt.some((l) => l.startsWith(`/opt/long-link symlink 120777 0:0 -> /${LONG_DIR}`)),
      opt.join('\n'),
    );
    for (const image of [both.ours, both.theirs]) {
      const r = await dockerRun(image);
      t.is(r.stdout, 'CapEff:\t0000000000002400\n', `${image}: ${r.stderr}`);
      const times = await dockerRun(image, ['cat', '/opt/times']);
      // docker, containerd and BuildKit set a time before 1970 or after 2262 to the epoch when unpacking
      t.is(times.stdout, '/opt/before-1970 0 0:0\n/opt/after-2242 0 0:0\n/opt/big-ids 1600000000 3000000:2500000\n', image);
    }
  } finally {
    await removeImages(both.ours, both.theirs);
  }
});
