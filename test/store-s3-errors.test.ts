/**
 * The S3 driver's start-up check names the usual misconfigurations in one line (HEAD answers carry no
 * error body, so the SDK alone says "UnknownError"): wrong credentials, a missing bucket, nothing
 * listening. Against the Ceph RGW of scripts/scaleout.sh (skipped with the reason without it, failing under CI=true).
 */
import { S3Driver } from '../store/driver/s3-driver.js';
import { freePort } from './helpers/distribution.js';
import { testWithScaleout } from './helpers/scaleout.js';

const { test, peers } = await testWithScaleout();

async function checkError(options: ConstructorParameters<typeof S3Driver>[0]): Promise<string> {
  const driver = new S3Driver(options);
  try {
    await driver.check();
    return 'no error';
  } catch (e) {
    return (e as Error).message;
  } finally {
    driver.client.destroy();
  }
}

test('a wrong secret key, a missing bucket and a closed port are each one line naming the cause', async (t) => {
  const denied = await checkError({ ...peers!.s3, secretAccessKey: 'not-the-secret' });
  t.regex(denied, /denied access to bucket .* \(HTTP 403\): check the access key and secret key/);
  const missing = await checkError({ ...peers!.s3, bucket: 'tsbuild-no-such-bucket' });
  t.regex(missing, /has no bucket tsbuild-no-such-bucket \(HTTP 404\): create it/);
  const closed = await checkError({ ...peers!.s3, endpoint: `http://127.0.0.1:${await freePort()}` });
  t.regex(closed, /ECONNREFUSED/);
  for (const m of [denied, missing, closed]) t.false(m.includes('\n'), m);
});
