/**
 * Registry cost at scale: `tsbuild registry` against distribution's `docker-registry` (Debian), both
 * started here on loopback over the same content, written straight into each one's on-disk layout
 * (10,000 pushes would take longer than the measurements): 10,000 repositories (half flat, half nested
 * two deep), 15,000 manifests, each under its own tag (one repository holds 5,001 of them).
 *
 * Prints, next to distribution and as tsbuild ÷ distribution:
 * - a full `_catalog` walk with n=100, following `Link` headers, and the time per page (lower is better);
 * - paging through the 5,001 tags with `tags/list?n=100` (distribution 2.8 ignores `n` and answers all
 *   tags in one response), and all of them in one response without `n`;
 * - manifest GETs per second by tag, each request a random one of the 15,000 tags (and of 1,000, for
 *   how the rate declines as the working set grows), 64 keep-alive connections (wrk with a Lua script,
 *   else a Node load generator); higher is better.
 * Each figure is measured in ROUNDS back-to-back pairs, the order swapped every round; the ratio is the
 * median of the pairs' ratios (the VM's speed drifts within a run). Both servers run with their default
 * settings (tsbuild's manifest cache: 5 s TTL) and log one line per request to a file.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { row, time } from './_measure.js';
import { nodeGetRate, startDistribution, startTsbuild, type Peer } from './_peers.js';

const REPOSITORIES = 10_000;
const MANIFESTS = 15_000;
const TAGS_REPOSITORY = 'bench/tags';
/** Manifests in TAGS_REPOSITORY: the ones left over when every other repository has one. */
const MANY_TAGS = MANIFESTS - (REPOSITORIES - 1);
const PAGE = 100;
const SMALL_SET = 1_000;
const CONNECTIONS = 64;
const LOAD_SECONDS = 10;
const WARMUP_SECONDS = 3;
const ROUNDS = 3;

const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';
const ACCEPT = `${MANIFEST_TYPE}, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json`;

interface Content {
  blobs: { digest: string; bytes: Buffer }[];
  /** Repository names, TAGS_REPOSITORY among them. */
  repositories: string[];
  /** (repository, tag, manifest) for every manifest. */
  tagged: { name: string; tag: string; digest: string; bytes: Buffer }[];
}

const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const hexOf = (digest: string) => digest.slice('sha256:'.length);

/** 5,000 flat names, 4,999 nested ones as team-NN/svc-NNN, and the repository with many tags. */
function makeContent(): Content {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
  const layer = randomBytes(4096);
  const blobs = [config, layer].map((bytes) => ({ digest: sha256(bytes), bytes }));
  const repositories: string[] = [];
  for (let i = 0; i < REPOSITORIES / 2; i++) repositories.push(`app-${String(i).padStart(5, '0')}`);
  for (let i = 0; repositories.length < REPOSITORIES - 1; i++)
    repositories.push(`team-${String(i % 50).padStart(2, '0')}/svc-${String(Math.floor(i / 50)).padStart(3, '0')}`);
  repositories.push(TAGS_REPOSITORY);
  const tagged: Content['tagged'] = [];
  const manifest = (seed: string) =>
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MANIFEST_TYPE,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: blobs[0]!.digest, size: config.length },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: blobs[1]!.digest, size: layer.length }],
        annotations: { 'org.example.seed': seed },
      }),
    );
  for (const name of repositories.slice(0, -1)) {
    const bytes = manifest(name);
    tagged.push({ name, tag: 'v1', digest: sha256(bytes), bytes });
  }
  for (let i = 0; i < MANY_TAGS; i++) {
    const tag = `t-${String(i).padStart(5, '0')}`;
    const bytes = manifest(`${TAGS_REPOSITORY}:${tag}`);
    tagged.push({ name: TAGS_REPOSITORY, tag, digest: sha256(bytes), bytes });
  }
  return { blobs, repositories, tagged };
}

function fileWriter(): (path: string, content: string | Buffer) => void {
  const made = new Set<string>();
  return (path, content) => {
    const dir = dirname(path);
    if (!made.has(dir)) {
      mkdirSync(dir, { recursive: true });
      made.add(dir);
    }
    writeFileSync(path, content);
  };
}

/** tsbuild's layout (store/layout.ts, store/repositories.ts) under `<storage>/content`. */
function writeTsbuild(root: string, content: Content): void {
  const put = fileWriter();
  const base = join(root, 'content');
  const blob = (digest: string, bytes: Buffer) => put(join(base, 'blobs', 'sha256', hexOf(digest)), bytes);
  for (const b of content.blobs) blob(b.digest, b.bytes);
  for (const name of content.repositories) {
    for (const b of content.blobs) put(join(base, 'repositories', name, '_layers', 'sha256', hexOf(b.digest)), b.digest);
  }
  for (const m of content.tagged) {
    blob(m.digest, m.bytes);
    const repo = join(base, 'repositories', m.name, '_manifests');
    put(join(repo, 'revisions', 'sha256', hexOf(m.digest)), JSON.stringify({ digest: m.digest, mediaType: MANIFEST_TYPE, size: m.bytes.length }));
    put(join(repo, 'tags', m.tag), m.digest);
  }
}

/** distribution's layout (registry/storage/paths.go) under `<rootdirectory>/docker/registry/v2`. */
function writeDistribution(root: string, content: Content): void {
  const put = fileWriter();
  const base = join(root, 'docker', 'registry', 'v2');
  const blob = (digest: string, bytes: Buffer) => put(join(base, 'blobs', 'sha256', hexOf(digest).slice(0, 2), hexOf(digest), 'data'), bytes);
  for (const b of content.blobs) blob(b.digest, b.bytes);
  for (const name of content.repositories) {
    for (const b of content.blobs) put(join(base, 'repositories', name, '_layers', 'sha256', hexOf(b.digest), 'link'), b.digest);
  }
  for (const m of content.tagged) {
    blob(m.digest, m.bytes);
    const repo = join(base, 'repositories', m.name, '_manifests');
    put(join(repo, 'revisions', 'sha256', hexOf(m.digest), 'link'), m.digest);
    put(join(repo, 'tags', m.tag, 'current', 'link'), m.digest);
    put(join(repo, 'tags', m.tag, 'index', 'sha256', hexOf(m.digest), 'link'), m.digest);
  }
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });

function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

interface Walk {
  seconds: number;
  /** Seconds of each page. */
  pages: number[];
  items: string[];
}

/** Follows `Link: <…>; rel="next"` from `first` to the end, collecting `key` of each JSON page. */
async function walk(base: string, first: string, key: 'repositories' | 'tags'): Promise<Walk> {
  const pages: number[] = [];
  const items: string[] = [];
  let next: string | undefined = first;
  const seconds = await time(async () => {
    while (next !== undefined) {
      const start = process.hrtime.bigint();
      const res = await get(`${base}${next}`);
      if (res.status !== 200) throw new Error(`GET ${next}: HTTP ${res.status} ${res.body.toString().slice(0, 200)}`);
      items.push(...((JSON.parse(res.body.toString('utf8')) as Record<string, string[]>)[key] ?? []));
      pages.push(Number(process.hrtime.bigint() - start) / 1e9);
      const link = res.headers.link as string | undefined;
      next = link ? /<([^>]+)>;\s*rel="next"/.exec(link)?.[1] : undefined;
      if (pages.length > 100_000) throw new Error('catalog walk does not end');
    }
  });
  return { seconds, pages, items };
}

/** Requests per second at CONNECTIONS connections, each request a random path of `pathsFile`. */
async function randomLoad(base: string, pathsFile: string, paths: string[], seconds: number): Promise<number> {
  if (existsSync('/usr/bin/wrk')) {
    const script = join(dirname(pathsFile), 'random-paths.lua');
    writeFileSync(
      script,
      `local paths = {}
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end
function init(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  math.randomseed(id * 7919 + os.time())
end
function request()
  return wrk.format("GET", paths[math.random(#paths)])
end
`,
    );
    const r = spawnSync(
      '/usr/bin/wrk',
      ['-t', '2', '-c', String(CONNECTIONS), '-d', `${seconds}s`, '-H', `Accept: ${ACCEPT}`, '-s', script, base, '--', pathsFile],
      { encoding: 'utf8' },
    );
    const m = /Requests\/sec:\s+([\d.]+)/.exec(r.stdout);
    if (!m || /Non-2xx/.test(r.stdout)) throw new Error(`wrk failed: ${r.stdout}${r.stderr}`);
    return Number(m[1]);
  }
  return nodeGetRate(base, () => paths[Math.floor(Math.random() * paths.length)] ?? '/v2/', { Accept: ACCEPT }, CONNECTIONS, seconds);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Both servers must hold the same content: the same repository names, and manifests by tag with the same digests. */
async function checkSame(peers: Peer[], content: Content): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const m = content.tagged[Math.floor((i * content.tagged.length) / 50)]!;
    for (const peer of peers) {
      const res = await get(`${peer.url}/v2/${m.name}/manifests/${m.tag}`, { Accept: ACCEPT });
      if (res.status !== 200 || sha256(res.body) !== m.digest)
        throw new Error(`${peer.name}: GET ${m.name}:${m.tag} gave HTTP ${res.status}, ${sha256(res.body)}; expected ${m.digest}`);
    }
  }
}

type Figure = Record<string, number[]>;

export async function run(): Promise<void> {
  if (!existsSync('/usr/bin/docker-registry')) {
    console.log('registry-scale bench: /usr/bin/docker-registry (Debian docker-registry) is not installed; run scripts/setup.sh');
    return;
  }
  const dir = join(tmpdir(), `tsbuild-bench-registry-scale-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  try {
    const content = makeContent();
    const fill = await time(async () => {
      writeTsbuild(join(dir, 'tsbuild'), content);
      writeDistribution(join(dir, 'distribution'), content);
    });
    console.log(`wrote ${REPOSITORIES} repositories and ${MANIFESTS} manifests into both layouts in ${fill.toFixed(1)} s`);
    const allPaths = content.tagged.map((m) => `/v2/${m.name}/manifests/${m.tag}`);
    // a spread-out 1,000 of them, every 15th
    const smallPaths = allPaths.filter((_, i) => i % Math.floor(MANIFESTS / SMALL_SET) === 0).slice(0, SMALL_SET);
    const allFile = join(dir, 'paths-all.txt');
    const smallFile = join(dir, 'paths-small.txt');
    writeFileSync(allFile, `${allPaths.join('\n')}\n`);
    writeFileSync(smallFile, `${smallPaths.join('\n')}\n`);

    const peers = [await startDistribution(dir), await startTsbuild(dir)];
    const catalog: Figure = {};
    const perPage: Figure = {};
    const maxPage: Figure = {};
    const tags: Figure = {};
    const tagPages: Record<string, number> = {};
    const tagsWhole: Figure = {};
    const rateAll: Figure = {};
    const rateSmall: Figure = {};
    try {
      await checkSame(peers, content);
      const expected = [...content.repositories].sort();
      for (let round = 0; round < ROUNDS; round++) {
        for (const peer of round % 2 ? [...peers].reverse() : peers) {
          spawnSync('sync');
          const w = await walk(peer.url, `/v2/_catalog?n=${PAGE}`, 'repositories');
          // distribution lists nested names in its own order ('/' before every other character): compare as sets
          const got = [...w.items].sort();
          if (got.length !== expected.length || got.some((n, i) => n !== expected[i]))
            throw new Error(`${peer.name}: the catalog walk listed ${w.items.length} names, not the ${expected.length} written`);
          (catalog[peer.name] ??= []).push(w.seconds);
          (perPage[peer.name] ??= []).push(w.seconds / w.pages.length);
          (maxPage[peer.name] ??= []).push(Math.max(...w.pages));
          const t = await walk(peer.url, `/v2/${TAGS_REPOSITORY}/tags/list?n=${PAGE}`, 'tags');
          if (new Set(t.items).size !== MANY_TAGS) throw new Error(`${peer.name}: tags/list gave ${t.items.length} tags, not ${MANY_TAGS}`);
          (tags[peer.name] ??= []).push(t.seconds);
          tagPages[peer.name] = t.pages.length;
          const whole = await walk(peer.url, `/v2/${TAGS_REPOSITORY}/tags/list`, 'tags');
          if (whole.pages.length !== 1 || whole.items.length !== MANY_TAGS)
            throw new Error(`${peer.name}: tags/list without n gave ${whole.items.length} tags in ${whole.pages.length} pages`);
          (tagsWhole[peer.name] ??= []).push(whole.seconds);
          if (process.env.BENCH_VERBOSE)
            console.log(
              `round ${round} ${peer.name}: catalog ${w.seconds.toFixed(2)} s in ${w.pages.length} pages, tags ${t.seconds.toFixed(3)} s in ${t.pages.length}`,
            );
        }
      }
      for (const peer of peers) await randomLoad(peer.url, allFile, allPaths, WARMUP_SECONDS);
      for (let round = 0; round < ROUNDS; round++) {
        for (const peer of round % 2 ? [...peers].reverse() : peers) {
          (rateAll[peer.name] ??= []).push(await randomLoad(peer.url, allFile, allPaths, LOAD_SECONDS));
          (rateSmall[peer.name] ??= []).push(await randomLoad(peer.url, smallFile, smallPaths, LOAD_SECONDS));
          if (process.env.BENCH_VERBOSE)
            console.log(
              `round ${round} ${peer.name}: ${rateAll[peer.name]!.at(-1)!.toFixed(0)}/s of ${MANIFESTS}, ${rateSmall[peer.name]!.at(-1)!.toFixed(0)}/s of ${SMALL_SET}`,
            );
        }
      }
    } finally {
      await Promise.all(peers.map((p) => p.stop()));
    }

    const ratio = (f: Figure) => median(f.tsbuild!.map((v, i) => v / f.distribution![i]!));
    const s = (v: number) => `${v.toFixed(2)} s`;
    const ms = (v: number) => `${(v * 1000).toFixed(1)} ms`;
    const rate = (v: number) => `${v.toFixed(0)}/s`;
    const w = [48, 16, 16, 8];
    console.log(row(['', 'tsbuild', 'distribution', 'ratio'], w));
    console.log(
      row(
        [`_catalog walk, n=${PAGE}, ${REPOSITORIES} repositories`, s(median(catalog.tsbuild!)), s(median(catalog.distribution!)), ratio(catalog).toFixed(2)],
        w,
      ),
    );
    console.log(row(['  time per page (mean)', ms(median(perPage.tsbuild!)), ms(median(perPage.distribution!)), ratio(perPage).toFixed(2)], w));
    console.log(row(['  slowest page', ms(median(maxPage.tsbuild!)), ms(median(maxPage.distribution!)), ratio(maxPage).toFixed(2)], w));
    console.log(
      row(
        [
          `tags/list, ${MANY_TAGS} tags, n=${PAGE} (pages: ${tagPages.tsbuild} / ${tagPages.distribution})`,
          ms(median(tags.tsbuild!)),
          ms(median(tags.distribution!)),
          ratio(tags).toFixed(2),
        ],
        w,
      ),
    );
    console.log(
      row(
        [`tags/list, ${MANY_TAGS} tags in one response`, ms(median(tagsWhole.tsbuild!)), ms(median(tagsWhole.distribution!)), ratio(tagsWhole).toFixed(2)],
        w,
      ),
    );
    console.log(
      row([`manifest GET/s, random of ${MANIFESTS} tags`, rate(median(rateAll.tsbuild!)), rate(median(rateAll.distribution!)), ratio(rateAll).toFixed(2)], w),
    );
    console.log(
      row(
        [`manifest GET/s, random of ${SMALL_SET} tags`, rate(median(rateSmall.tsbuild!)), rate(median(rateSmall.distribution!)), ratio(rateSmall).toFixed(2)],
        w,
      ),
    );
    console.log(
      `(times: lower is better, ratio tsbuild ÷ distribution, target for the catalog walk ≤ 1.00; GET/s: higher is better, target at ${MANIFESTS} ≥ 3.00; ` +
        `medians of ${ROUNDS} back-to-back pairs; distribution 2.8 ignores n on tags/list and answers all tags at once; load by ${existsSync('/usr/bin/wrk') ? 'wrk' : 'node'}, ${CONNECTIONS} connections)`,
    );
  } finally {
    agent.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}
