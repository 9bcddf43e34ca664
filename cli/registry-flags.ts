import { loadRegistrySettings, RegistryClient, type RegistrySettings } from '../registry/client/index.js';
import { ProgressPrinter } from './progress-printer.js';
import { listOption, type CommandContext, type OptionSpec } from './command.js';

/** Flags every command that talks to registries takes (build, pull, push). */
export const registryOptions: OptionSpec = {
  'registry-mirror': { type: 'string', multiple: true },
  'insecure-registry': { type: 'string', multiple: true },
};

export const registryHelp = [
  '  --registry-mirror URL            try this mirror for docker.io images first (repeatable; then registry-mirrors of the config file and of /etc/docker/daemon.json)',
  '  --insecure-registry HOST[:PORT]  use plain HTTP or unverified TLS for this host or CIDR (repeatable; besides those of the config file and daemon.json; 127.0.0.0/8 and localhost always are)',
].join('\n');

/** Settings from the flags, the tsbuild config file, dockerd's daemon.json and /etc/containers/registries.conf. */
export function registrySettings(ctx: CommandContext): RegistrySettings {
  return loadRegistrySettings({
    registryMirrors: listOption(ctx, 'registry-mirror'),
    insecureRegistries: listOption(ctx, 'insecure-registry'),
    warn: (message) => ctx.stderr.write(`tsbuild: warning: ${message}\n`),
  });
}

/** A client with progress on the command's stdout (bars on a terminal, plain lines otherwise). */
export function registryClient(ctx: CommandContext, quiet = false): { client: RegistryClient; progress?: ProgressPrinter } {
  const progress = quiet ? undefined : new ProgressPrinter(ctx.stdout as NodeJS.WriteStream);
  const client = new RegistryClient({ settings: registrySettings(ctx), ...(progress ? { onProgress: progress.listener } : {}) });
  return { client, ...(progress ? { progress } : {}) };
}
