/**
 * The registry conformance suite (registry-conformance.test.ts), every case, through haproxy in front of
 * three replicas on S3 (Ceph RGW) + Redis (issue 16). Skipped with the reason when scripts/scaleout.sh's
 * peers are absent; failing under CI=true.
 */
import { testWithScaleout } from './helpers/scaleout.js';

const { peers, test } = await testWithScaleout();
if (peers) {
  process.env.TSBUILD_CONFORMANCE_TARGET = 'scaleout';
  await import('./registry-conformance.test.js');
} else {
  test('the registry conformance suite through the balancer', (t) => t.pass());
}
