import { dirname, resolve } from 'node:path';
import { listenAddress, loadConfigFile, registryConfigSchema, validateConfig, type RegistryConfig } from '../../config/index.js';
import type { MirrorUpstreamOptions } from '../../registry/index.js';
import { type Command, listOption, stringOption, UsageError } from '../command.js';
import { garbageCollectCommand, scaleoutOptions } from './registry-gc.js';

function splitListen(value: string, source: string): { host: string; port: number } {
  const parsed = listenAddress.safeParse(value);
  const port = Number(value.slice(value.lastIndexOf(':') + 1));
  if (!parsed.success || port > 65535) throw new UsageError(`${source} "${value}" must be HOST:PORT, e.g. 127.0.0.1:5000`);
  const host = value.slice(0, value.lastIndexOf(':')).replace(/^\[(.*)\]$/, '$1');
  return { host: host === '' ? '0.0.0.0' : host, port };
}

/** `--mirror docker.io=https://registry-1.docker.io` → the registry and its upstream URL. */
export function parseMirrorFlag(value: string): { registry: string; url: string } {
  const eq = value.indexOf('=');
  const registry = value.slice(0, eq).trim().toLowerCase();
  const url = value.slice(eq + 1).trim();
  if (eq <= 0 || !/^[a-z0-9.-]+(?::\d{1,5})?$/.test(registry) || !/^https?:\/\/[^\s?#]+$/.test(url)) {
    throw new UsageError(`--mirror "${value}" must be REGISTRY=URL, e.g. --mirror docker.io=https://registry-1.docker.io`);
  }
  return { registry, url };
}

/** The config file's `mirrors:` with `--mirror` flags on top (a flag replaces the URL of the same registry). */
export function mirrorUpstreams(config: RegistryConfig, flags: { registry: string; url: string }[]): MirrorUpstreamOptions[] {
  const out = new Map<string, MirrorUpstreamOptions>();
  for (const [registry, m] of Object.entries(config.mirrors)) {
    out.set(registry, {
      registry,
      url: m.url,
      insecure: m.insecure,
      tagTtlMs: m['tag-ttl'],
      ...(m.username !== undefined ? { username: m.username, password: m.password ?? '' } : {}),
    });
  }
  for (const f of flags) out.set(f.registry, { ...out.get(f.registry), registry: f.registry, url: f.url });
  return [...out.values()];
}

export const registryCommand: Command = {
  name: 'registry',
  summary: 'Serve the store as an OCI registry (distribution spec v1.1, what docker push/pull speak)',
  usage:
    'registry [--config FILE] [--listen HOST:PORT] [--storage DIR] [--tls-cert F --tls-key F] [--htpasswd FILE] [--read-only] [--log-level L] [--mirror REGISTRY=URL]...',
  help: [
    '  --config FILE        YAML config (see config/registry.yaml); flags override it',
    '  --listen HOST:PORT   address to serve on (default 127.0.0.1:5000)',
    '  --storage DIR        store root to serve (default: the tsbuild root)',
    '  --tls-cert FILE      serve HTTPS with this PEM certificate (needs --tls-key)',
    "  --tls-key FILE       the certificate's PEM private key",
    '  --htpasswd FILE      require basic auth against this htpasswd file (bcrypt: htpasswd -B)',
    '  --read-only          refuse pushes and deletes (405 UNSUPPORTED)',
    '  --log-level L        fatal|error|warn|info|debug|trace|silent (default info: one JSON line per request)',
    '  --mirror REG=URL     mirror registry REG (docker.io, ghcr.io, …) from URL as a pull-through cache; repeatable',
    '                       (e.g. --mirror docker.io=https://registry-1.docker.io); see `mirrors:` in the config',
  ].join('\n'),
  options: {
    config: { type: 'string' },
    listen: { type: 'string' },
    storage: { type: 'string' },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    htpasswd: { type: 'string' },
    'read-only': { type: 'boolean' },
    'log-level': { type: 'string' },
    mirror: { type: 'string', multiple: true },
  },
  subcommands: [garbageCollectCommand],
  async run(ctx) {
    const mirrorFlags = listOption(ctx, 'mirror').map(parseMirrorFlag);
    if (ctx.positionals.length > 0) throw new UsageError(`unexpected argument "${ctx.positionals[0]}" (see 'tsbuild registry --help')`);
    const configFile = stringOption(ctx, 'config');
    const config: RegistryConfig = configFile ? loadConfigFile(registryConfigSchema, configFile) : validateConfig(registryConfigSchema, {}, 'defaults');
    // Paths in the file are relative to the file; paths on the command line to the working directory.
    const fromFile = (p: string | undefined) => (p && configFile ? resolve(dirname(configFile), p) : p);
    const tlsCert = stringOption(ctx, 'tls-cert') ?? fromFile(config.tls?.certificate);
    const tlsKey = stringOption(ctx, 'tls-key') ?? fromFile(config.tls?.key);
    if (Boolean(tlsCert) !== Boolean(tlsKey)) throw new UsageError('--tls-cert and --tls-key go together: give both or neither');
    const logLevel = stringOption(ctx, 'log-level') ?? config.log.level;
    if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
      throw new UsageError(`--log-level "${logLevel}" is not one of fatal, error, warn, info, debug, trace, silent`);
    }
    const listen = stringOption(ctx, 'listen') ?? config.listen ?? '127.0.0.1:5000';
    const { host, port } = splitListen(listen, stringOption(ctx, 'listen') ? '--listen' : 'listen');
    const htpasswd = stringOption(ctx, 'htpasswd') ?? fromFile(config.auth?.htpasswd);
    const mirrors = mirrorUpstreams(config, mirrorFlags);
    const defaultUpstream = config.mirror['default-upstream'];
    const storage = resolve(stringOption(ctx, 'storage') ?? fromFile(config.storage) ?? ctx.root);
    // With S3, --storage (or the tsbuild root) is only this replica's local directory.
    const scaleout = scaleoutOptions(config, configFile, storage);
    // loaded here, not at the top: `tsbuild registry garbage-collect` (a subcommand of this module) needs no server
    const { createRegistryServer } = await import('../../registry/index.js');
    const server = createRegistryServer({
      storage,
      host,
      port,
      tls: tlsCert && tlsKey ? { cert: tlsCert, key: tlsKey } : undefined,
      htpasswd,
      anonymousRead: config.auth?.['anonymous-read'] ?? false,
      realm: config.auth?.realm,
      readOnly: ctx.values['read-only'] === true || config['read-only'],
      logLevel,
      uploadExpiryMs: config.uploads['expire-after'],
      uploadPurgeIntervalMs: config.uploads['purge-interval'],
      bodyIdleTimeoutMs: config.uploads['body-idle-timeout'],
      maxManifestBytes: config.limits['manifest-size'],
      manifestCacheSeconds: config.cache['manifest-ttl'] / 1000,
      metrics: config.metrics,
      headersTimeoutMs: config.http['headers-timeout'],
      keepAliveTimeoutMs: config.http['keep-alive-timeout'],
      publicUrl: config.http.host,
      trustedProxies: config.http['trusted-proxies'],
      mirrors,
      mirror: {
        ...(defaultUpstream !== undefined ? { defaultUpstream: defaultUpstream === 'none' ? null : defaultUpstream } : {}),
        revalidateTimeoutMs: config.mirror['revalidate-timeout'],
        upstreamTimeoutMs: config.mirror['upstream-timeout'],
      },
      mirrorCache: { maxBytes: config.mirror['max-size'], graceMs: config.mirror['eviction-grace'] },
      scaleout,
      gc: {
        intervalMs: config.gc.interval,
        graceMs: config.gc['grace-period'],
        deleteUntagged: config.gc['delete-untagged'],
        uploadExpiryMs: config.uploads['expire-after'],
      },
    });
    const url = await server.listen();
    ctx.stderr.write(
      `tsbuild registry: serving ${scaleout ? `s3://${scaleout.s3.bucket}/${scaleout.s3.rootDirectory ?? ''}` : server.store.root} at ${url}${mirrors.length ? `, mirroring ${mirrors.map((m) => `${m.registry} from ${m.url}`).join(', ')}` : ''}\n`,
    );
    await new Promise<void>((done) => {
      // One signal is enough: requests in flight get a grace period, then are cut (close()). A second
      // signal gets the default action and ends the process at once.
      const stop = (signal: NodeJS.Signals) => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        ctx.stderr.write(`tsbuild registry: ${signal}: finishing requests in flight, then exiting\n`);
        void server.close().then(done, done);
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    // Whatever may still hold the event loop (a client's socket, a store write), the process ends now.
    setTimeout(() => process.exit(), 2000).unref();
  },
};
