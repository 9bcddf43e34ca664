import { z } from 'zod';

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, kb: 1000, mb: 1000 ** 2, gb: 1000 ** 3, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };

/** `90s`, `30m`, `24h`, `7d`, `500ms`, or a number of seconds → milliseconds. */
export const duration = z.union([z.number().nonnegative(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'number') return Math.round(v * 1000);
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/.exec(v);
  if (!m) {
    ctx.addIssue({ code: 'custom', message: `"${v}" is not a duration (use e.g. 90s, 30m, 24h, 7d)` });
    return z.NEVER;
  }
  return Math.round(Number(m[1]) * DURATION_UNITS[m[2]!]!);
});

/** `4MiB`, `512KiB`, `1GB` or a number of bytes → bytes. */
export const byteSize = z.union([z.number().int().positive(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'number') return v;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(v);
  const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${v}" is not a size (use e.g. 4MiB, 512KiB, 1GB)` });
    return z.NEVER;
  }
  return Math.round(Number(m[1]) * unit);
});

/** `HOST:PORT` (IPv6 hosts in brackets); validated, kept as written. */
export const listenAddress = z.string().regex(/^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]*):\d{1,5}$/, 'must be HOST:PORT, e.g. 127.0.0.1:5000 or 0.0.0.0:5000');

/** `storage: {s3: …}`: the bucket (distribution's s3 driver's keys, kebab-case). Credentials: AWS_* env vars, or the keys here. */
const s3StorageSchema = z
  .object({
    /** http(s)://host:port of the S3 API (Ceph RGW, MinIO); AWS when absent. */
    endpoint: z
      .string()
      .regex(/^https?:\/\/[^/\s]+\/?$/, 'must be http(s)://host:port')
      .optional(),
    bucket: z.string().min(3),
    region: z.string().default('us-east-1'),
    /** Key prefix of everything the registry stores (no leading or trailing '/'). */
    'root-directory': z
      .string()
      .regex(/^(?:[^/\s]+(?:\/[^/\s]+)*)?$/, 'must be a key prefix without leading or trailing "/"')
      .default(''),
    'force-path-style': z.boolean().default(true),
    'access-key': z.string().min(1).optional(),
    'secret-key': z.string().min(1).optional(),
  })
  .strict();

/**
 * `tsbuild registry --config FILE` (YAML). Every key is optional; command-line flags override the file.
 * config/registry.yaml is the annotated example.
 */
export const registryConfigSchema = z
  .object({
    /** Address to listen on (HOST:PORT). Default 127.0.0.1:5000. */
    listen: listenAddress.optional(),
    /**
     * Store root served by the registry (a directory; default: the tsbuild root, --root, TSBUILD_ROOT), or
     * `{s3: {…}}`: a bucket shared by several replicas (needs `redis`). After parsing, `storage` is the
     * directory only and the bucket is `storageS3` (so readers of a directory need not know about S3).
     */
    storage: z.union([z.string().min(1), z.object({ s3: s3StorageSchema }).strict()]).optional(),
    /** Redis shared by the replicas of an S3 store: upload sessions, the tag cache, locks. `url: redis://host:port`. */
    redis: z
      .object({ url: z.string().regex(/^rediss?:\/\//, 'must be redis://host:port') })
      .strict()
      .optional(),
    /** HTTPS: PEM certificate (chain) and key files. Both or neither; plain HTTP without them. */
    tls: z
      .object({ certificate: z.string().min(1), key: z.string().min(1) })
      .strict()
      .optional(),
    auth: z
      .object({
        /** htpasswd file with bcrypt entries (`htpasswd -B`). Turns basic auth on. */
        htpasswd: z.string().min(1),
        /** Realm named in the WWW-Authenticate challenge. */
        realm: z.string().default('tsbuild registry'),
        /** Allow reading content without credentials (pushes always need a login); uses docker's token flow. */
        'anonymous-read': z.boolean().default(false),
      })
      .strict()
      .optional(),
    /** Refuse every write with 405 UNSUPPORTED (maintenance, mirrors of a frozen store). */
    'read-only': z.boolean().default(false),
    log: z
      .object({
        /** pino level: fatal, error, warn, info (one line per request), debug, trace, silent. */
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      })
      .strict()
      .default({ level: 'info' }),
    uploads: z
      .object({
        /** An upload session that received nothing for this long is removed. */
        'expire-after': duration.default(24 * 3_600_000),
        /** How often abandoned uploads are looked for. */
        'purge-interval': duration.default(10 * 60_000),
        /**
         * An upload body that sends nothing for this long is cut; the session keeps the bytes received and
         * the client resumes from there. 0 never cuts.
         */
        'body-idle-timeout': duration.default(30_000),
      })
      .strict()
      .default({ 'expire-after': 24 * 3_600_000, 'purge-interval': 10 * 60_000, 'body-idle-timeout': 30_000 }),
    gc: z
      .object({
        /**
         * How often the running registry collects garbage online (store/gc.ts); 0 (the default) never:
         * run `tsbuild registry garbage-collect` instead, which is safe beside a running registry too.
         */
        interval: duration.default(0),
        /** Nothing pushed, linked or written within this long before a GC began is collected. */
        'grace-period': duration.default(3_600_000),
        /** Also unlink untagged manifests older than the grace period (distribution's --delete-untagged). */
        'delete-untagged': z.boolean().default(false),
      })
      .strict()
      .default({ interval: 0, 'grace-period': 3_600_000, 'delete-untagged': false }),
    limits: z
      .object({
        /** Largest manifest accepted on push (413 beyond). */
        'manifest-size': byteSize.default(4 * 1024 * 1024),
      })
      .strict()
      .default({ 'manifest-size': 4 * 1024 * 1024 }),
    cache: z
      .object({
        /** How long tag → digest and manifest lookups are cached in memory (0 turns the cache off). */
        'manifest-ttl': duration.default(5000),
      })
      .strict()
      .default({ 'manifest-ttl': 5000 }),
    http: z
      .object({
        /** Time allowed for request headers to arrive (whole requests are not timed: uploads can be slow; see uploads.body-idle-timeout). */
        'headers-timeout': duration.default(60_000),
        /** Idle keep-alive connections are closed after this. */
        'keep-alive-timeout': duration.default(75_000),
        /**
         * The registry's public base URL (distribution's `http.host`), e.g. https://registry.example.com:
         * every absolute URL handed out (the token realm) uses it, whatever the request says.
         */
        host: z
          .string()
          .regex(/^https?:\/\/[^/\s?#]+$/, 'must be a base URL like https://registry.example.com (scheme and host, no path)')
          .optional(),
        /**
         * Peers (addresses or CIDRs) whose X-Forwarded-Proto / X-Forwarded-Host are believed: the TLS-terminating
         * proxies in front of the registry. Other peers' forwarding headers are ignored.
         */
        'trusted-proxies': z.array(z.string().min(1)).default([]),
      })
      .strict()
      .default({ 'headers-timeout': 60_000, 'keep-alive-timeout': 75_000, 'trusted-proxies': [] }),
    /** Serve Prometheus metrics at /metrics. */
    metrics: z.boolean().default(true),
    /**
     * Upstream registries this server mirrors (pull-through cache), keyed by the registry name images use:
     * `docker.io: { url: https://registry-1.docker.io }`. `--mirror REGISTRY=URL` adds or overrides entries.
     */
    mirrors: z
      .record(
        z.string().regex(/^[a-z0-9.-]+(?::\d{1,5})?$/, 'must be a registry host such as docker.io, ghcr.io or registry.local:5000'),
        z
          .object({
            /** Where the upstream answers: https://registry-1.docker.io, http://10.0.0.5:5000. */
            url: z.string().regex(/^https?:\/\/[^\s?#]+$/, 'must be an http:// or https:// URL'),
            /** Credentials for the upstream; without them, docker's config.json entry for its host is used. */
            username: z.string().optional(),
            password: z.string().optional(),
            /** TLS without certificate verification (self-signed upstreams). */
            insecure: z.boolean().default(false),
            /** How long a tag's digest is served before the upstream is asked again (HEAD). */
            'tag-ttl': duration.default(5 * 60_000),
          })
          .strict(),
      )
      .default({}),
    mirror: z
      .object({
        /**
         * The upstream for names without a registry prefix or ?ns= (docker's registry-mirrors send Docker Hub
         * names that way). Default docker.io when it is mirrored; `none` turns it off.
         */
        'default-upstream': z.string().optional(),
        /** How long a tag request waits for the upstream before the cached digest answers. */
        'revalidate-timeout': duration.default(500),
        /** How long a request for content not cached waits for the upstream before failing. */
        'upstream-timeout': duration.default(10_000),
        /**
         * Largest the cache may grow (`50GiB`): beyond it, the least recently pulled cached images that are
         * not pinned are evicted. Unlimited when absent.
         */
        'max-size': byteSize.optional(),
        /** Content pulled or written more recently than this is never evicted (fetches and pushes under way). */
        'eviction-grace': duration.default(10 * 60_000),
      })
      .strict()
      .default({ 'revalidate-timeout': 500, 'upstream-timeout': 10_000, 'eviction-grace': 10 * 60_000 }),
  })
  .strict()
  .transform(({ storage, ...rest }) => ({
    ...rest,
    storage: typeof storage === 'string' ? storage : undefined,
    /** `storage: {s3: …}`, parsed (not a key of the file). */
    storageS3: typeof storage === 'object' ? storage.s3 : undefined,
  }));

export type RegistryConfig = z.infer<typeof registryConfigSchema>;
export type S3StorageConfig = z.infer<typeof s3StorageSchema>;
