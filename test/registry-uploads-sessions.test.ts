/**
 * Every request on an upload session has a defined, prompt outcome: a stalled PATCH does not hold the
 * session, a silent body is cut after the idle time, a DELETE under a streaming PATCH answers it with
 * 404, and storage errors are 5xx (never "upload unknown") that leave nothing behind.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { digestOf } from '../oci/index.js';
import { withDeadline } from './helpers/deadline.js';
import { startTestRegistry, type TestRegistry } from './helpers/registry-http.js';
import { tempDir } from './helpers/temp.js';
import { openRequest, rangeBytes, type Outcome } from './helpers/upload-requests.js';

/** A request that hangs fails the test after this; answers are expected at once. */
const DEADLINE_MS = 20_000;
const MiB = 1 << 20;

function registry(t: { teardown(f: () => unknown): void }, options: Parameters<typeof startTestRegistry>[0] = {}): Promise<TestRegistry> {
  return startTestRegistry(options).then((reg) => {
    t.teardown(() => reg.close());
    return reg;
  });
}

/** Every file and directory under `dir`, relative. */
function walk(dir: string, prefix = ''): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const rel = join(prefix, e.name);
    return e.isDirectory() ? [rel, ...walk(join(dir, e.name), rel)] : [rel];
  });
}

const describe = (o: Outcome) => ('closed' in o ? 'connection closed without an answer' : `${o.status} ${o.code ?? ''}`);

test('a PATCH stalled mid-body does not hold its session: the status GET and a resume PATCH from another connection answer', async (t) => {
  const reg = await registry(t);
  const data = randomBytes(MiB);
  const digest = digestOf(data);
  const location = (await reg.call('POST', '/v2/stall/app/blobs/uploads/')).headers.location!;
  const stalled = openRequest(reg.url, 'PATCH', location, {
    'Content-Length': MiB,
    'Content-Range': `0-${MiB - 1}`,
    'Content-Type': 'application/octet-stream',
  });
  t.teardown(() => stalled.req.destroy());
  stalled.req.on('error', () => undefined);
  stalled.req.write(data.subarray(0, 64 << 10));
  await new Promise((r) => setTimeout(r, 300)); // the 64 KiB reach the server; then the client says nothing more

  const status = await withDeadline(reg.call('GET', location), DEADLINE_MS, 'the status GET');
  t.is(status.status, 204);
  const stored = rangeBytes(status.headers.range);
  t.true(stored <= 64 << 10, `stored ${stored}`);

  const resume = await withDeadline(
    reg.call('PATCH', location, {
      headers: { 'Content-Range': `${stored}-${MiB - 1}`, 'Content-Length': MiB - stored, 'Content-Type': 'application/octet-stream' },
      body: data.subarray(stored),
    }),
    DEADLINE_MS,
    'the resume PATCH',
  );
  t.is(resume.status, 202, resume.body.toString());
  t.is(resume.headers.range, `0-${MiB - 1}`);
  // The stale request is answered with an error (or its connection closed): it never gets a 202.
  const stale = await withDeadline(stalled.outcome, DEADLINE_MS, 'the stalled PATCH');
  t.true('closed' in stale || (stale.status === 400 && stale.code === 'BLOB_UPLOAD_INVALID'), describe(stale));

  const put = await withDeadline(reg.call('PUT', `${location}?digest=${digest}`, { headers: { 'Content-Length': 0 } }), DEADLINE_MS, 'the PUT');
  t.is(put.status, 201, put.body.toString());
  t.true((await reg.call('GET', `/v2/stall/app/blobs/${digest}`)).body.equals(data));
  t.deepEqual(await reg.server.store.ingests.list(), []);
});

test('a body that sends nothing for the idle time is cut; the session keeps the bytes received and resumes from there', async (t) => {
  const reg = await registry(t, { bodyIdleTimeoutMs: 2000 });
  const data = randomBytes(MiB);
  const digest = digestOf(data);
  const location = (await reg.call('POST', '/v2/stall/idle/blobs/uploads/')).headers.location!;
  const stalled = openRequest(reg.url, 'PATCH', location, { 'Content-Length': MiB, 'Content-Range': `0-${MiB - 1}` });
  t.teardown(() => stalled.req.destroy());
  stalled.req.on('error', () => undefined);
  stalled.req.write(data.subarray(0, 64 << 10));

  const outcome = await withDeadline(stalled.outcome, DEADLINE_MS, 'the silent PATCH');
  t.true('closed' in outcome || (outcome.status === 400 && outcome.code === 'BLOB_UPLOAD_INVALID'), describe(outcome));
  const status = await reg.call('GET', location);
  t.is(status.status, 204);
  t.is(status.headers.range, `0-${(64 << 10) - 1}`, 'the bytes received before the silence are kept');
  const resume = await reg.call('PATCH', location, {
    headers: { 'Content-Range': `${64 << 10}-${MiB - 1}`, 'Content-Length': MiB - (64 << 10) },
    body: data.subarray(64 << 10),
  });
  t.is(resume.status, 202, resume.body.toString());
  t.is((await reg.call('PUT', `${location}?digest=${digest}`, { headers: { 'Content-Length': 0 } })).status, 201);
  t.true((await reg.call('GET', `/v2/stall/idle/blobs/${digest}`)).body.equals(data));
});

test('DELETE of a session while a PATCH streams into it: the PATCH gets 404 BLOB_UPLOAD_UNKNOWN and nothing is left', async (t) => {
  const reg = await registry(t);
  const data = randomBytes(8 * MiB);
  const location = (await reg.call('POST', '/v2/stall/deleted/blobs/uploads/')).headers.location!;
  const id = location.split('/').pop()!;
  const streaming = openRequest(reg.url, 'PATCH', location, { 'Content-Length': data.length });
  t.teardown(() => streaming.req.destroy());
  streaming.req.on('error', () => undefined);
  streaming.req.write(data.subarray(0, 3 * MiB));
  // Bytes are being written when the DELETE comes.
  await withDeadline(
    (async () => {
      while (rangeBytes((await reg.call('GET', location)).headers.range) === 0) await new Promise((r) => setTimeout(r, 20));
    })(),
    DEADLINE_MS,
    'the first bytes on disk',
  );
  const deleted = await withDeadline(reg.call('DELETE', location), DEADLINE_MS, 'the DELETE');
  t.is(deleted.status, 204);
  streaming.req.end(data.subarray(3 * MiB));
  const outcome = await withDeadline(streaming.outcome, DEADLINE_MS, 'the PATCH');
  t.like(outcome, { status: 404, code: 'BLOB_UPLOAD_UNKNOWN' }, describe(outcome));
  t.is((await reg.call('GET', location)).code, 'BLOB_UPLOAD_UNKNOWN');
  const root = reg.server.store.root;
  t.false(existsSync(join(root, 'content', 'ingest', id)), 'the session directory is gone');
  t.deepEqual(
    walk(root).filter((f) => f.includes('.tmp-')),
    [],
  );
});

test('a storage error reading a session is a 500 with a log line naming it, not BLOB_UPLOAD_UNKNOWN', async (t) => {
  const log = join(tempDir(), 'registry.log');
  const reg = await registry(t, { logLevel: 'error', logDestination: log });
  const location = (await reg.call('POST', '/v2/stall/eloop/blobs/uploads/')).headers.location!;
  const meta = join(reg.server.store.root, 'content', 'ingest', location.split('/').pop()!, 'meta.json');
  unlinkSync(meta);
  symlinkSync('meta.json', meta); // reading it fails with ELOOP: the store did not expect that
  const r = await reg.call('GET', location);
  t.true(r.status >= 500, `${r.status} ${r.code}`);
  t.is(r.code, 'UNKNOWN');
  await withDeadline(
    (async () => {
      while (!(existsSync(log) && readFileSync(log, 'utf8').includes('ELOOP'))) await new Promise((r) => setTimeout(r, 50));
    })(),
    DEADLINE_MS,
    'the log line',
  );
  t.pass();
});

test('a full disk: a refused upload start leaves nothing behind; a refused PATCH is a 5xx and its session resumes once there is room', async (t) => {
  const dir = tempDir();
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', dir]);
  if (mounted.status !== 0) return t.pass(`skipped: cannot mount a tmpfs here (${mounted.stderr.toString().trim()})`);
  t.teardown(() => spawnSync('umount', ['-l', dir]));
  const log = join(tempDir(), 'registry.log');
  const reg = await registry(t, { storage: join(dir, 'store'), logLevel: 'error', logDestination: log });
  const location = (await reg.call('POST', '/v2/full/app/blobs/uploads/')).headers.location!;
  const id = location.split('/').pop()!;
  // Fill the disk to the last page.
  mkdirSync(join(dir, 'filler'));
  const fd = openSync(join(dir, 'filler', 'bytes'), 'w');
  try {
    for (const page = Buffer.alloc(4096, 1); ; ) writeSync(fd, page);
  } catch (e) {
    t.is((e as NodeJS.ErrnoException).code, 'ENOSPC');
  } finally {
    closeSync(fd);
  }
  const ingestDir = join(reg.server.store.root, 'content', 'ingest');
  for (let i = 0; i < 3; i++) {
    const start = await withDeadline(reg.call('POST', '/v2/full/app/blobs/uploads/'), DEADLINE_MS, 'the POST');
    t.true(start.status >= 500, `POST on a full disk: ${start.status} ${start.code}`);
    t.is(start.code, 'UNKNOWN');
  }
  t.deepEqual(readdirSync(ingestDir), [id], 'no session directory of the refused starts');
  t.deepEqual(
    walk(dir).filter((f) => f.includes('.tmp-')),
    [],
    'no temp file',
  );

  const data = randomBytes(MiB);
  const refused = await withDeadline(
    reg.call('PATCH', location, { headers: { 'Content-Range': `0-${MiB - 1}`, 'Content-Length': MiB }, body: data }),
    DEADLINE_MS,
    'the PATCH',
  );
  t.true(refused.status >= 500, `PATCH on a full disk: ${refused.status} ${refused.code}`);
  t.not(refused.code, 'BLOB_UPLOAD_UNKNOWN');
  const status = await reg.call('GET', location);
  t.is(status.status, 204, 'the session survives');

  rmSync(join(dir, 'filler'), { recursive: true });
  const stored = rangeBytes(status.headers.range);
  const resume = await reg.call('PATCH', location, {
    headers: { 'Content-Range': `${stored}-${MiB - 1}`, 'Content-Length': MiB - stored },
    body: data.subarray(stored),
  });
  t.is(resume.status, 202, resume.body.toString());
  t.is((await reg.call('PUT', `${location}?digest=${digestOf(data)}`, { headers: { 'Content-Length': 0 } })).status, 201);
  t.true((await reg.call('GET', `/v2/full/app/blobs/${digestOf(data)}`)).body.equals(data));
  await withDeadline(
    (async () => {
      while (!(existsSync(log) && readFileSync(log, 'utf8').includes('ENOSPC'))) await new Promise((r) => setTimeout(r, 50));
    })(),
    DEADLINE_MS,
    'the log line naming ENOSPC',
  );
});
