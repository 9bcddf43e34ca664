/**
 * `tsbuild registry` killed with SIGKILL in the middle of an upload: after a restart the blob is either
 * complete and verified or absent, never partial, and an interrupted session can be resumed.
 */
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { digestOf } from '../oci/index.js';
import { freePort, waitForHttp } from './helpers/distribution.js';
import { call } from './helpers/registry-http.js';
import { tsbuildBin } from './helpers/run.js';
import { tempDir } from './helpers/temp.js';

interface Child {
  url: string;
  kill(): Promise<void>;
}

async function startRegistry(storage: string, port: number): Promise<Child> {
  const child: ChildProcess = spawn(
    process.execPath,
    [tsbuildBin, 'registry', '--storage', storage, '--listen', `127.0.0.1:${port}`, '--log-level', 'silent'],
    { stdio: 'ignore' },
  );
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/v2/`);
  return {
    url,
    kill: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}

async function uploadedBytes(url: string, location: string): Promise<number> {
  const r = await call(url, 'GET', location);
  if (r.status !== 204) throw new Error(`upload status ${r.status}`);
  return Number(/^0-(\d+)$/.exec(r.headers.range as string)![1]) + (r.headers.range === '0-0' ? 0 : 1);
}

test('SIGKILL during a streamed PATCH: no blob after restart, the session resumes and verifies', async (t) => {
  const storage = tempDir('registry-crash-');
  const port = await freePort();
  const data = randomBytes(8 << 20);
  const digest = digestOf(data);
  let reg = await startRegistry(storage, port);
  t.teardown(() => reg.kill());
  const start = await call(reg.url, 'POST', '/v2/crash/app/blobs/uploads/');
  const location = start.headers.location!;
  const url = new URL(reg.url);
  const req = http.request({ host: url.hostname, port: url.port, method: 'PATCH', path: location, headers: { 'Content-Length': data.length } });
  req.on('error', () => undefined);
  req.write(data.subarray(0, 3 << 20));
  // wait until part of it reached the server's disk, then kill the server with the request still open
  for (let i = 0; i < 100 && (await uploadedBytes(reg.url, location)) === 0; i++) await new Promise((r) => setTimeout(r, 50));
  await reg.kill();
  req.destroy();

  reg = await startRegistry(storage, port);
  t.is((await call(reg.url, 'HEAD', `/v2/crash/app/blobs/${digest}`)).status, 404);
  const received = await uploadedBytes(reg.url, location);
  t.true(received > 0 && received <= 3 << 20, `received ${received}`);
  const rest = await call(reg.url, 'PATCH', location, {
    headers: { 'Content-Range': `${received}-${data.length - 1}`, 'Content-Length': data.length - received },
    body: data.subarray(received),
  });
  t.is(rest.status, 202);
  const put = await call(reg.url, 'PUT', `${location}?digest=${digest}`, { headers: { 'Content-Length': 0 } });
  t.is(put.status, 201);
  const get = await call(reg.url, 'GET', `/v2/crash/app/blobs/${digest}`);
  t.true(get.body.equals(data));
});

test('SIGKILL around the commit: after restart the blob is complete and verified, or absent', async (t) => {
  const storage = tempDir('registry-crash-');
  const port = await freePort();
  let reg = await startRegistry(storage, port);
  t.teardown(() => reg.kill());
  const outcomes: string[] = [];
  for (const delayMs of [0, 5, 20, 60, 200]) {
    const data = randomBytes(16 << 20);
    const digest = digestOf(data);
    const name = `crash/commit${delayMs}`;
    const start = await call(reg.url, 'POST', `/v2/${name}/blobs/uploads/`);
    const patch = await call(reg.url, 'PATCH', start.headers.location!, { body: data });
    t.is(patch.status, 202);
    // the PUT makes the server hash 16 MiB and move it into place; kill it somewhere along the way
    const put = call(reg.url, 'PUT', `${patch.headers.location}?digest=${digest}`, { headers: { 'Content-Length': 0 } }).catch(() => undefined);
    await new Promise((r) => setTimeout(r, delayMs));
    await reg.kill();
    await put;
    reg = await startRegistry(storage, port);
    const stored = await call(reg.url, 'GET', `/v2/${name}/blobs/${digest}`);
    // whatever the repository says, the store itself never holds a partial blob under the digest
    const file = join(storage, 'content', 'blobs', 'sha256', digest.slice(7));
    if (existsSync(file)) t.true(readFileSync(file).equals(data), `store file after kill at ${delayMs}ms is not the pushed bytes`);
    if (stored.status === 200) {
      t.true(stored.body.equals(data), `blob after kill at ${delayMs}ms is not the pushed bytes`);
      outcomes.push('complete');
    } else {
      t.is(stored.status, 404);
      t.is(stored.code, 'BLOB_UNKNOWN');
      outcomes.push('absent');
    }
  }
  t.log(`outcomes: ${outcomes.join(', ')}`);
});
