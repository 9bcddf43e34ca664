/**
 * `tsbuild registry` stopped with SIGTERM (or SIGINT) while uploads are in flight: it stops accepting,
 * lets requests finish for a grace period, cuts the rest and exits, on the first signal. The sessions it
 * cut stay resumable and no temp file is left.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { digestOf } from '../oci/index.js';
import { Store } from '../store/index.js';
import { withDeadline } from './helpers/deadline.js';
import { freePort, waitForHttp } from './helpers/distribution.js';
import { call } from './helpers/registry-http.js';
import { tsbuildBin } from './helpers/run.js';
import { tempDir } from './helpers/temp.js';
import { openRequest, rangeBytes } from './helpers/upload-requests.js';

const MiB = 1 << 20;

function walk(dir: string, prefix = ''): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const rel = join(prefix, e.name);
    return e.isDirectory() ? [rel, ...walk(join(dir, e.name), rel)] : [rel];
  });
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test.serial(`${signal} with uploads in flight: the process is gone within 10 s and its sessions resume`, async (t) => {
    const storage = tempDir('registry-shutdown-');
    const port = await freePort();
    const child = spawn(process.execPath, [tsbuildBin, 'registry', '--storage', storage, '--listen', `127.0.0.1:${port}`, '--log-level', 'silent'], {
      stdio: 'ignore',
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('exit', (code, sig) => resolve({ code, signal: sig })),
    );
    t.teardown(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    const url = `http://127.0.0.1:${port}`;
    await waitForHttp(`${url}/v2/`);

    // Stalled bodies: part of a declared 4 MiB, then silence with the socket open.
    const data = randomBytes(4 * MiB);
    const stalled = [];
    for (let i = 0; i < 6; i++) {
      const location = (await call(url, 'POST', `/v2/shutdown/s${i}/blobs/uploads/`)).headers.location!;
      const open = openRequest(url, 'PATCH', location, { 'Content-Length': data.length });
      open.req.on('error', () => undefined);
      open.req.write(data.subarray(0, (i + 1) * 300_000));
      stalled.push({ location, ...open });
    }
    // Uploads arriving together, the shape that once kept hashing threads busy forever.
    const together = Array.from({ length: 16 }, async (_, i) => {
      const location = (await call(url, 'POST', `/v2/shutdown/t${i}/blobs/uploads/`)).headers.location!;
      const big = await call(url, 'PATCH', location, { headers: { 'Content-Range': `0-${MiB - 1}`, 'Content-Length': MiB }, body: data.subarray(0, MiB) });
      await call(url, 'PATCH', big.headers.location!, {
        headers: { 'Content-Range': `${MiB}-${MiB + 16}`, 'Content-Length': 17 },
        body: data.subarray(MiB, MiB + 17),
      });
    });
    await Promise.race([Promise.allSettled(together), new Promise((r) => setTimeout(r, 3000))]);

    child.kill(signal);
    const exit = await withDeadline(exited, 10_000, `the registry after ${signal}`);
    t.true(exit.code === 0 || exit.signal === null, `exit ${JSON.stringify(exit)}`);
    await Promise.allSettled(stalled.map((s) => withDeadline(s.outcome, 5000, 'the stalled client seeing its connection end')));
    for (const s of stalled) s.req.destroy();

    // A restart sweeps what is left; the cut sessions keep what they received and resume.
    await Store.open(storage);
    t.deepEqual(
      walk(storage).filter((f) => f.includes('.tmp')),
      [],
      'no temp file',
    );
    const again = spawn(process.execPath, [tsbuildBin, 'registry', '--storage', storage, '--listen', `127.0.0.1:${port}`, '--log-level', 'silent'], {
      stdio: 'ignore',
    });
    const againExited = new Promise((resolve) => again.once('exit', resolve));
    t.teardown(() => {
      if (again.exitCode === null && again.signalCode === null) again.kill('SIGKILL');
    });
    await waitForHttp(`${url}/v2/`);
    const { location } = stalled[5]!;
    const stored = rangeBytes((await call(url, 'GET', location)).headers.range);
    t.true(stored <= 6 * 300_000, `stored ${stored}`);
    const rest = await call(url, 'PATCH', location, {
      headers: { 'Content-Range': `${stored}-${data.length - 1}`, 'Content-Length': data.length - stored },
      body: data.subarray(stored),
    });
    t.is(rest.status, 202);
    t.is((await call(url, 'PUT', `${location}?digest=${digestOf(data)}`, { headers: { 'Content-Length': 0 } })).status, 201);
    again.kill('SIGTERM');
    await withDeadline(againExited, 10_000, 'the idle registry after SIGTERM');
  });
}
