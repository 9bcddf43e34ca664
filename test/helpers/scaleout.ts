import { readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import test, { type TestFn } from 'ava';
import { S3Driver, type S3DriverOptions } from '../../store/driver/s3-driver.js';

/**
 * The scale-out peers (Ceph RGW as S3, Redis) that scripts/scaleout.sh starts and describes in its env
 * file (default /tmp/scaleout/env; TSBUILD_SCALEOUT_ENV overrides). Keys: S3_ENDPOINT, S3_BUCKET,
 * S3_REGION, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY, REDIS_URL.
 */
export interface ScaleoutPeers {
  s3: S3DriverOptions & { endpoint: string; accessKeyId: string; secretAccessKey: string };
  redisUrl: string;
  /** The env file's variables (AWS_* among them), for child processes. */
  env: Record<string, string>;
}

export const SCALEOUT_ENV_FILE = process.env.TSBUILD_SCALEOUT_ENV ?? '/tmp/scaleout/env';

function parseEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

function redisPing(url: string, timeoutMs = 2000): Promise<boolean> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const socket = createConnection({ host: u.hostname, port: Number(u.port || 6379) });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}

/** The peers when they answer; else the reason they are not usable. */
export async function probeScaleoutPeers(): Promise<ScaleoutPeers | string> {
  let env: Record<string, string>;
  try {
    env = parseEnv(readFileSync(SCALEOUT_ENV_FILE, 'utf8'));
  } catch {
    return `no ${SCALEOUT_ENV_FILE} (start the peers with scripts/scaleout.sh)`;
  }
  const s3 = {
    endpoint: env.S3_ENDPOINT!,
    bucket: env.S3_BUCKET ?? 'registry',
    region: env.S3_REGION ?? 'us-east-1',
    forcePathStyle: true,
    accessKeyId: env.S3_ACCESS_KEY_ID ?? env.AWS_ACCESS_KEY_ID!,
    secretAccessKey: env.S3_SECRET_ACCESS_KEY ?? env.AWS_SECRET_ACCESS_KEY!,
  };
  if (!s3.endpoint || !env.REDIS_URL) return `${SCALEOUT_ENV_FILE} lacks S3_ENDPOINT or REDIS_URL`;
  try {
    const driver = new S3Driver(s3);
    await Promise.race([driver.check(), new Promise((_, reject) => setTimeout(() => reject(new Error('no answer in 5 s')), 5000).unref())]);
    driver.client.destroy();
  } catch (e) {
    return `S3 at ${s3.endpoint} does not answer: ${(e as Error).message} (run scripts/scaleout.sh)`;
  }
  if (!(await redisPing(env.REDIS_URL))) return `Redis at ${env.REDIS_URL} does not answer (run scripts/scaleout.sh)`;
  return { s3, redisUrl: env.REDIS_URL, env };
}

/**
 * `test` when the peers answer; otherwise skipped with the reason printed once — or, under CI=true,
 * failing with it (CI starts them with scripts/scaleout.sh through scripts/services.sh).
 */
export async function testWithScaleout(): Promise<{ test: TestFn; peers: ScaleoutPeers | undefined }> {
  const probed = await probeScaleoutPeers();
  if (typeof probed !== 'string') return { test, peers: probed };
  if (process.env.CI) {
    const failing = ((title: string) => test(title, (t) => t.fail(`scale-out peers missing under CI: ${probed}`))) as unknown as TestFn;
    return {
      test: Object.assign(failing, {
        serial: failing,
        skip: test.skip,
        only: failing,
        before: () => undefined,
        after: Object.assign(() => undefined, { always: () => undefined }),
      }) as unknown as TestFn,
      peers: undefined,
    };
  }
  console.warn(`skipping scale-out tests: ${probed}`);
  return {
    test: Object.assign(test.skip, {
      serial: test.skip,
      skip: test.skip,
      before: () => undefined,
      after: Object.assign(() => undefined, { always: () => undefined }),
    }) as unknown as TestFn,
    peers: undefined,
  };
}
