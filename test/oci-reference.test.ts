import test from 'ava';
import { familiarReference, formatReference, parseNormalized, parseReference, ReferenceError } from '../oci/index.js';

const hex = 'a'.repeat(64);

const valid: [string, string, string][] = [
  // input, fully qualified, familiar
  ['busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
  ['busybox:1.36', 'docker.io/library/busybox:1.36', 'busybox:1.36'],
  ['library/busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
  ['docker.io/busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
  ['index.docker.io/library/busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
  ['user/app', 'docker.io/user/app:latest', 'user/app:latest'],
  ['localhost:5000/app:v1', 'localhost:5000/app:v1', 'localhost:5000/app:v1'],
  ['localhost/app', 'localhost/app:latest', 'localhost/app:latest'],
  ['127.0.0.1:5000/a/b/c:tag', '127.0.0.1:5000/a/b/c:tag', '127.0.0.1:5000/a/b/c:tag'],
  ['ghcr.io/owner/repo', 'ghcr.io/owner/repo:latest', 'ghcr.io/owner/repo:latest'],
  [`host.example.com/a/b/c:tag@sha256:${hex}`, `host.example.com/a/b/c:tag@sha256:${hex}`, `host.example.com/a/b/c:tag@sha256:${hex}`],
  [`busybox@sha256:${hex}`, `docker.io/library/busybox@sha256:${hex}`, `busybox@sha256:${hex}`],
  ['a-b/c_d__e/f--g.h:TAG_1.x-y', 'docker.io/a-b/c_d__e/f--g.h:TAG_1.x-y', 'a-b/c_d__e/f--g.h:TAG_1.x-y'],
  ['[::1]:5000/app', '[::1]:5000/app:latest', '[::1]:5000/app:latest'],
  [`app:${'t'.repeat(128)}`, `docker.io/library/app:${'t'.repeat(128)}`, `app:${'t'.repeat(128)}`],
];

for (const [input, full, familiar] of valid) {
  test(`parses ${input.slice(0, 60)}`, (t) => {
    const ref = parseNormalized(input);
    t.is(formatReference(ref), full);
    t.is(familiarReference(ref), familiar);
  });
}

test('keeps "no tag" distinct from latest until normalized', (t) => {
  t.is(parseReference('busybox').tag, undefined);
  t.is(parseReference(`busybox@sha256:${hex}`).tag, undefined);
  t.is(parseNormalized(`busybox@sha256:${hex}`).tag, undefined);
});

test('an upper-case first component is a registry host, as in docker', (t) => {
  t.is(parseReference('Registry/app').registry, 'Registry');
});

const invalid: [string, RegExp][] = [
  ['', /empty/],
  ['Busybox', /must be lowercase/],
  ['docker.io/Library/busybox', /must be lowercase/],
  ['a//b', /empty path component/],
  ['app:', /tag/],
  [`app:${'t'.repeat(129)}`, /longer than 128/],
  ['app:-bad', /must not start/],
  ['app:tag!', /tag "tag!"/],
  ['app@sha256:abc', /64/],
  ['app@md5:abc', /unsupported digest algorithm/],
  ['app@', /digest/],
  ['-app', /path component/],
  ['app-', /path component/],
  ['a..b/c', /not a valid host name|path component/],
  ['host:port/app', /invalid port/],
  [hex, /64-character hexadecimal/],
  ['has space', /white space/],
  [`@sha256:${hex}`, /repository name before/],
  [`${'a'.repeat(250)}/${'b'.repeat(10)}`, /longer than 255/],
  ['localhost:5000/App', /must be lowercase/],
  ['my_host.example/app', /not a valid host name/],
  ['a/b/c__', /path component/],
];

for (const [i, [input, pattern]] of invalid.entries()) {
  test(`rejects #${i} ${JSON.stringify(input.slice(0, 40))}`, (t) => {
    const err = t.throws(() => parseNormalized(input), { instanceOf: ReferenceError });
    t.regex(err!.message, pattern);
    t.false(err!.message.includes('\n'), 'error is one line');
  });
}
