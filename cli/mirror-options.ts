import { dirname, resolve } from 'node:path';
import { loadConfigFile, registryConfigSchema, validateConfig, type RegistryConfig } from '../config/index.js';
import type { MirrorUpstreamOptions } from '../registry/index.js';
import { Store } from '../store/index.js';
import { type CommandContext, listOption, stringOption } from './command.js';
import { mirrorUpstreams, parseMirrorFlag } from './commands/registry.js';

/** What `tsbuild mirror` subcommands share: the registry config, the store it serves, its upstreams. */

/** The registry config (`--config`), or the defaults. */
export function registryConfig(ctx: CommandContext): { config: RegistryConfig; file?: string } {
  const file = stringOption(ctx, 'config');
  return file ? { config: loadConfigFile(registryConfigSchema, file), file } : { config: validateConfig(registryConfigSchema, {}, 'defaults') };
}

/**
 * The store the registry with the same settings serves: `--storage`, else the config's `storage:`
 * (relative to the file), else the tsbuild root (`--root`, TSBUILD_ROOT).
 */
export async function mirrorStore(ctx: CommandContext, config?: { config: RegistryConfig; file?: string }): Promise<Store> {
  const fromFile = config?.config.storage && config.file ? resolve(dirname(config.file), config.config.storage) : undefined;
  return Store.open(resolve(stringOption(ctx, 'storage') ?? fromFile ?? ctx.root));
}

/** Upstreams from the config's `mirrors:` with `--mirror` flags on top, as `tsbuild registry` reads them. */
export function configuredUpstreams(ctx: CommandContext, config: RegistryConfig): MirrorUpstreamOptions[] {
  return mirrorUpstreams(config, listOption(ctx, 'mirror').map(parseMirrorFlag));
}

export const storeFlags = {
  storage: { type: 'string' },
  config: { type: 'string' },
} as const;

export const storeHelp = [
  '  --config FILE        the registry YAML (mirrors:, mirror:, storage:) the registry runs with',
  "  --storage DIR        the store (default: the config's storage:, else the tsbuild root, --root)",
];
