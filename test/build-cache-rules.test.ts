/**
 * The build cache's exactness: a no-op rebuild gives the same manifest digest with every step CACHED
 * (also in a new process, after other commands swept the store); one changed file invalidates exactly
 * the COPY that selects it and the steps after it; a changed build arg invalidates only the steps that
 * use it (BuildKit: the RUNs after its ARG, and instructions that expand it); --no-cache-filter STAGE.
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { testWith } from './helpers/tools.js';
import { tsbuild } from './helpers/run.js';
import { tempDir } from './helpers/temp.js';
import { storeWithBusybox } from './helpers/build-compare.js';
import { allCached, outcomes } from './helpers/cache-progress.js';

const test = testWith(['runc']);

async function ok(root: string, args: string[], env: Record<string, string> = {}) {
  const r = await tsbuild(root, args, { env: { ...process.env, ...env } });
  if (r.code !== 0) throw new Error(`tsbuild ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r;
}

async function manifestDigest(root: string, ref: string): Promise<string> {
  return (JSON.parse((await ok(root, ['inspect', ref])).stdout) as { Digest: string }).Digest;
}

async function context(files: Record<string, string>): Promise<string> {
  const dir = tempDir('cache-ctx-');
  for (const [name, body] of Object.entries(files)) {
    await fs.mkdir(join(dir, name, '..'), { recursive: true });
    await fs.writeFile(join(dir, name), body);
  }
  return dir;
}

const STEPS = `FROM busybox:latest
COPY a.txt /a.txt
RUN cat /a.txt > /a-seen
COPY b/ /b/
RUN ls /b > /b-seen
COPY c.txt /c.txt
CMD ["sh"]
`;

/**
 * 300 more files under b/: a context and a COPY source that large are checked by one find(1) listing of
 * their metadata once a build has seen their size (builder/context/tree-stats.ts); smaller ones by lstat.
 */
function filler(files: number): Record<string, string> {
  return Object.fromEntries(Array.from({ length: files }, (_, i) => [`b/fill/${i}.txt`, `${i}\n`]));
}

for (const extra of [0, 300])
  test(`a no-op rebuild is all CACHED with the same digest, across processes and store sweeps; plain progress times each step (${extra} more files)`, async (t) => {
    const root = await storeWithBusybox();
    const ctx = await context({ Dockerfile: STEPS, 'a.txt': 'a\n', 'b/x.txt': 'x\n', 'b/y.txt': 'y\n', 'c.txt': 'c\n', ...filler(extra) });
    const first = await ok(root, ['build', '--progress', 'plain', '-t', 'noop:v1', ctx]);
    t.notRegex(first.stderr, /CACHED/);
    // the no-op memo: a large context is recorded as find(1) lists it, a small one by lstat calls
    const memo = async () => {
      const dir = join(root, 'cache', 'noop');
      const names = (await fs.readdir(dir)).filter((n) => !n.includes('.tmp-'));
      t.is(names.length, 1, names.join(' '));
      const st = await fs.stat(join(dir, names[0]!));
      return { context: (JSON.parse(await fs.readFile(join(dir, names[0]!), 'utf8')) as { context: string }).context, mtimeMs: st.mtimeMs };
    };
    const recorded = await memo();
    t.regex(recorded.context, extra > 0 ? /^find:/ : /^lstat:/);
    const memoHit = await ok(root, ['build', '--progress', 'plain', '-t', 'noop:v1', ctx]);
    t.true(allCached(outcomes(memoHit.stderr)), memoHit.stderr);
    t.deepEqual(await memo(), recorded, 'the first rebuild is answered from the memo, which it leaves as it was');
    t.regex(first.stderr, /#\d+ DONE \d+\.\ds\n/, 'each step that ran shows its time');
    // other commands open (and sweep) the store in between: the cache outlives them
    await ok(root, ['images']);
    const second = await ok(root, ['build', '--progress', 'plain', '-t', 'noop:v2', ctx]);
    const o = outcomes(second.stderr);
    for (const s of ['COPY a.txt /a.txt', 'RUN cat /a.txt > /a-seen', 'COPY b/ /b/', 'RUN ls /b > /b-seen', 'COPY c.txt /c.txt'])
      t.is(o.get(s), 'CACHED', `${s}\n${second.stderr}`);
    t.is(await manifestDigest(root, 'noop:v2'), await manifestDigest(root, 'noop:v1'));
    // times and owners are not content: a touched file keeps the cache
    const later = new Date(Date.now() + 60_000);
    await fs.utimes(join(ctx, 'b/x.txt'), later, later);
    const touched = await ok(root, ['build', '--progress', 'plain', '-t', 'noop:v3', ctx]);
    t.is(outcomes(touched.stderr).get('COPY b/ /b/'), 'CACHED', touched.stderr);
    t.is(await manifestDigest(root, 'noop:v3'), await manifestDigest(root, 'noop:v1'));
  });

for (const extra of [0, 300])
  test(`one changed file invalidates exactly the COPY that selects it and what follows (${extra} more files)`, async (t) => {
    const root = await storeWithBusybox();
    const ctx = await context({ Dockerfile: STEPS, 'a.txt': 'a\n', 'b/x.txt': 'x\n', 'b/y.txt': 'y\n', 'c.txt': 'c\n', 'unused.txt': 'u\n', ...filler(extra) });
    await ok(root, ['build', '-q', '-t', 'files:v1', ctx]);
    // a second build, answered from the no-op memo, which now knows the context's size
    await ok(root, ['build', '-q', '-t', 'files:v1', ctx]);
    // a file no COPY selects changes nothing
    await fs.writeFile(join(ctx, 'unused.txt'), 'changed\n');
    const unused = outcomes((await ok(root, ['build', '--progress', 'plain', '-t', 'files:v2', ctx])).stderr);
    t.true(allCached(unused), JSON.stringify([...unused]));
    t.is(await manifestDigest(root, 'files:v2'), await manifestDigest(root, 'files:v1'));
    // same size, other bytes: content decides, not size
    await fs.writeFile(join(ctx, 'b/y.txt'), 'z\n');
    const r = await ok(root, ['build', '--progress', 'plain', '-t', 'files:v3', ctx]);
    const o = outcomes(r.stderr);
    t.is(o.get('COPY a.txt /a.txt'), 'CACHED', r.stderr);
    t.is(o.get('RUN cat /a.txt > /a-seen'), 'CACHED');
    t.is(o.get('COPY b/ /b/'), 'DONE');
    t.is(o.get('RUN ls /b > /b-seen'), 'DONE');
    t.is(o.get('COPY c.txt /c.txt'), 'DONE');
    t.not(await manifestDigest(root, 'files:v3'), await manifestDigest(root, 'files:v1'));
    // a new file under a copied dir counts as a change of that COPY too
    await fs.writeFile(join(ctx, 'b/new.txt'), 'new\n');
    t.is(outcomes((await ok(root, ['build', '--progress', 'plain', '-t', 'files:v4', ctx])).stderr).get('COPY b/ /b/'), 'DONE');
    // and so does a file's mode, and a .dockerignore that leaves a file out
    await fs.chmod(join(ctx, 'b/x.txt'), 0o600);
    t.is(outcomes((await ok(root, ['build', '--progress', 'plain', '-t', 'files:v5', ctx])).stderr).get('COPY b/ /b/'), 'DONE');
    await fs.writeFile(join(ctx, '.dockerignore'), 'b/new.txt\n');
    const ignored = outcomes((await ok(root, ['build', '--progress', 'plain', '-t', 'files:v6', ctx])).stderr);
    t.is(ignored.get('COPY b/ /b/'), 'DONE', JSON.stringify([...ignored]));
    // unchanged since: every step cached, the same image
    const same = outcomes((await ok(root, ['build', '--progress', 'plain', '-t', 'files:v7', ctx])).stderr);
    t.true(allCached(same), JSON.stringify([...same]));
    t.is(await manifestDigest(root, 'files:v7'), await manifestDigest(root, 'files:v6'));
  });

const ARGS = `FROM busybox:latest AS tools
RUN echo tools > /tools

FROM busybox:latest
RUN echo before > /before
ARG FLAVOR=plain
COPY a.txt /a.txt
RUN echo "$FLAVOR" > /flavor
COPY --from=tools /tools /tools
LABEL flavor=$FLAVOR
RUN cat /a.txt > /a-seen
`;

test('a changed build arg invalidates only the steps that use it', async (t) => {
  const root = await storeWithBusybox();
  const ctx = await context({ Dockerfile: ARGS, 'a.txt': 'a\n' });
  await ok(root, ['build', '-q', '-t', 'args:v1', ctx]);
  const r = await ok(root, ['build', '--progress', 'plain', '--build-arg', 'FLAVOR=spicy', '-t', 'args:v2', ctx]);
  const o = outcomes(r.stderr);
  t.is(o.get('RUN echo tools > /tools'), 'CACHED', r.stderr);
  t.is(o.get('RUN echo before > /before'), 'CACHED');
  t.is(o.get('COPY a.txt /a.txt'), 'CACHED', 'a COPY after the ARG that does not use it stays cached');
  t.is(o.get('RUN echo "$FLAVOR" > /flavor'), 'DONE');
  t.is(o.get('RUN cat /a.txt > /a-seen'), 'DONE', 'RUNs after the ARG have it in their environment (BuildKit)');
  const config = JSON.parse((await ok(root, ['inspect', 'args:v2'])).stdout) as { Config: { config: { Labels: Record<string, string> } } };
  t.is(JSON.stringify(config).includes('"flavor":"spicy"'), true);
  // the same value again is a no-op
  const again = outcomes((await ok(root, ['build', '--progress', 'plain', '--build-arg', 'FLAVOR=spicy', '-t', 'args:v3', ctx])).stderr);
  t.true(allCached(again), JSON.stringify([...again]));
  t.is(await manifestDigest(root, 'args:v3'), await manifestDigest(root, 'args:v2'));
});

test('--no-cache-filter STAGE rebuilds that stage only', async (t) => {
  const root = await storeWithBusybox();
  const ctx = await context({
    Dockerfile: `FROM busybox:latest AS deps
RUN echo deps > /deps
FROM busybox:latest AS tests
RUN echo tests > /tests
FROM busybox:latest
COPY --from=deps /deps /deps
COPY --from=tests /tests /tests
RUN cat /deps /tests > /all
`,
  });
  await ok(root, ['build', '-q', '-t', 'filter:v1', ctx]);
  const r = await ok(root, ['build', '--progress', 'plain', '--no-cache-filter', 'tests', '-t', 'filter:v2', ctx]);
  const o = outcomes(r.stderr);
  t.is(o.get('RUN echo deps > /deps'), 'CACHED', r.stderr);
  t.is(o.get('RUN echo tests > /tests'), 'DONE');
  // the rebuilt stage has the same keys, so what uses it is still cached
  t.is(o.get('COPY --from=tests /tests /tests'), 'CACHED');
  const idx = await ok(root, ['build', '--progress', 'plain', '--no-cache-filter', '2', '-t', 'filter:v3', ctx]);
  t.is(outcomes(idx.stderr).get('RUN cat /deps /tests > /all'), 'DONE', 'a stage by index');
  t.is(outcomes(idx.stderr).get('RUN echo deps > /deps'), 'CACHED');
});

test('a no-op rebuild answered from the memo still sees a retagged base, a moved or removed tag and changed flags', async (t) => {
  const root = await storeWithBusybox();
  const ctx = await context({ Dockerfile: 'FROM busybox:latest\nCOPY a.txt /a.txt\nRUN cat /a.txt > /seen\n', 'a.txt': 'a\n' });
  const first = await ok(root, ['build', '--progress', 'plain', '-t', 'memo:v1', ctx]);
  t.regex(first.stderr, /writing image/);
  const digest = await manifestDigest(root, 'memo:v1');
  // nothing changed: answered without running the builder (no image is written), every layer step CACHED
  const again = await ok(root, ['build', '--progress', 'plain', '-t', 'memo:v1', ctx]);
  t.notRegex(again.stderr, /writing image/, again.stderr);
  t.true(allCached(outcomes(again.stderr)), again.stderr);
  t.is(await manifestDigest(root, 'memo:v1'), digest);
  // the tag moved elsewhere: the build names its image again
  await ok(root, ['tag', 'busybox:latest', 'memo:v1']);
  const retag = await ok(root, ['build', '--progress', 'plain', '-t', 'memo:v1', ctx]);
  t.regex(retag.stderr, /writing image/);
  t.is(await manifestDigest(root, 'memo:v1'), digest);
  // the tag removed
  await ok(root, ['rmi', 'memo:v1']);
  await ok(root, ['build', '-q', '-t', 'memo:v1', ctx]);
  t.is(await manifestDigest(root, 'memo:v1'), digest);
  // a build arg, or another tag, is another build
  t.regex((await ok(root, ['build', '--progress', 'plain', '--build-arg', 'X=1', '-t', 'memo:v1', ctx])).stderr, /writing image/);
  // the base retagged to another image: the result follows it
  await ok(root, ['tag', 'memo:v1', 'busybox:latest']);
  const rebased = await ok(root, ['build', '--progress', 'plain', '-t', 'memo:v1', ctx]);
  t.regex(rebased.stderr, /writing image/);
  t.not(await manifestDigest(root, 'memo:v1'), digest, 'a new base gives a new image');
});

test("config-only steps' history takes the build's time as BuildKit's exporter gives it, not the base's; a no-op rebuild keeps the digest", async (t) => {
  const root = await storeWithBusybox();
  const history = async (ref: string) =>
    (JSON.parse((await ok(root, ['inspect', ref])).stdout) as { History: Array<{ created: string; created_by: string }> }).History.map(
      (h) => [h.created_by, h.created] as const,
    );
  const baseTimes = new Set((await history('busybox')).map(([, c]) => c));
  const ctx = await context({ Dockerfile: 'FROM busybox:latest\nENV A=1\nLABEL x=y\nRUN echo one > /one\nENV B=2\n' });
  await ok(root, ['build', '-q', '-t', 'times:v1', ctx]);
  const first = (await history('times:v1')).slice(-4);
  t.deepEqual(
    first.map(([by]) => by),
    ['ENV A=1', 'LABEL x=y', 'RUN /bin/sh -c echo one > /one', 'ENV B=2'],
  );
  const runTime = first[2]![1];
  t.false(baseTimes.has(runTime));
  t.deepEqual(
    first.map(([, created]) => created),
    [runTime, runTime, runTime, runTime],
    "ENV and LABEL before the RUN take its time (the build's), the ENV after it the RUN's",
  );
  const digest = await manifestDigest(root, 'times:v1');
  await new Promise((r) => setTimeout(r, 1100));
  const again = await ok(root, ['build', '--progress', 'plain', '-t', 'times:v1', ctx]);
  t.true(allCached(outcomes(again.stderr)), again.stderr);
  t.is(await manifestDigest(root, 'times:v1'), digest, 'a no-op rebuild gives the same image');
  // a later layer step: the ENV between two RUNs takes the first new layer's time, as in BuildKit
  await fs.writeFile(join(ctx, 'Dockerfile'), 'FROM busybox:latest\nENV A=1\nLABEL x=y\nRUN echo one > /one\nENV B=2\nRUN echo two > /two\n');
  await ok(root, ['build', '-q', '-t', 'times:v2', ctx]);
  const second = (await history('times:v2')).slice(-5);
  t.is(second[2]![1], runTime, 'the cached RUN keeps its time');
  t.not(second[4]![1], runTime);
  t.deepEqual(
    second.map(([, c]) => c),
    [runTime, runTime, runTime, runTime, second[4]![1]],
  );
  // only config steps: the base's time stays (there is no new layer to take one from)
  await fs.writeFile(join(ctx, 'Dockerfile'), 'FROM busybox:latest\nENV C=3\n');
  await ok(root, ['build', '-q', '-t', 'times:v3', ctx]);
  t.true(baseTimes.has((await history('times:v3')).at(-1)![1]));
  // SOURCE_DATE_EPOCH: every new entry
  await ok(root, ['build', '-q', '--no-cache', '-t', 'times:v4', ctx], { SOURCE_DATE_EPOCH: '1700000000' });
  t.is((await history('times:v4')).at(-1)![1], '2023-11-14T22:13:20Z');
});
