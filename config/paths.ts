import { homedir } from 'node:os';
import { join } from 'node:path';

/** Where tsbuild keeps its state unless --root or TSBUILD_ROOT say otherwise. */
export function defaultRoot(): string {
  if (process.getuid?.() === 0) return '/var/lib/tsbuild';
  const xdg = process.env.XDG_DATA_HOME;
  return join(xdg && xdg.length > 0 ? xdg : join(homedir(), '.local', 'share'), 'tsbuild');
}

/** The tsbuild config file: $TSBUILD_CONFIG, else $XDG_CONFIG_HOME/tsbuild/config.yaml (/etc/tsbuild/config.yaml as root). */
export function defaultConfigFile(): string {
  if (process.env.TSBUILD_CONFIG) return process.env.TSBUILD_CONFIG;
  if (process.getuid?.() === 0) return '/etc/tsbuild/config.yaml';
  const xdg = process.env.XDG_CONFIG_HOME;
  return join(xdg && xdg.length > 0 ? xdg : join(homedir(), '.config'), 'tsbuild', 'config.yaml');
}
