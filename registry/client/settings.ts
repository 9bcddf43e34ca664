import { DOCKER_HUB } from '../../oci/index.js';
import { defaultConfigFile, loadConfigFile, tsbuildConfigSchema } from '../../config/index.js';
import { defaultDockerDaemonJson, readDaemonJson } from './daemon-json.js';
import type { MirrorSetting, RegistrySettings } from './hosts.js';
import { defaultRegistriesConf, readRegistriesConf } from './registries-conf.js';

export interface RegistrySettingsSources {
  /** `--registry-mirror URL` flags (mirrors of docker.io), tried before the config file's. */
  registryMirrors?: string[];
  /** `--insecure-registry HOST[:PORT]` flags. */
  insecureRegistries?: string[];
  /** The tsbuild config file; `false` to ignore it. Default: defaultConfigFile(). */
  configFile?: string | false;
  /**
   * dockerd's daemon.json (`registry-mirrors`, `insecure-registries`); `false` to ignore it.
   * Default: $TSBUILD_DOCKER_DAEMON_JSON, else /etc/docker/daemon.json when it exists.
   */
  daemonJson?: string | false;
  /** containers-registries.conf; `false` to ignore it. Default: /etc/containers/registries.conf. */
  registriesConf?: string | false;
  /**
   * Receives one line per problem in daemon.json (its bad entries are left out, the build goes on).
   * Default: `tsbuild: warning: …` on stderr, each line once per process.
   */
  warn?: (message: string) => void;
}

function validMirrorUrl(url: string, source: string): string {
  try {
    const u = new URL(/^[a-z]+:\/\//i.test(url) ? url : `https://${url}`);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http(s)');
    return url;
  } catch {
    throw new Error(`invalid registry mirror "${url}" (${source}): expected a URL such as http://127.0.0.1:5000`);
  }
}

// Builds and pulls may load settings more than once; a warning about one file is worth one line.
const warned = new Set<string>();
function warnOnce(message: string): void {
  if (warned.has(message)) return;
  warned.add(message);
  process.stderr.write(`tsbuild: warning: ${message}\n`);
}

/**
 * The registry settings the builder, pull and push share. Mirrors of docker.io are tried in this
 * order: `--registry-mirror` flags, the tsbuild config file's `registry-mirrors`, daemon.json's
 * `registry-mirrors`, then registries.conf's `[[registry.mirror]]` — then docker.io itself. Insecure
 * registries are the union of all four (no source can mark a host secure again). A bad flag or tsbuild
 * config file fails; a bad daemon.json only warns, since that file belongs to dockerd.
 */
export function loadRegistrySettings(sources: RegistrySettingsSources = {}): RegistrySettings {
  const dockerMirrors: MirrorSetting[] = (sources.registryMirrors ?? []).map((m) => ({ location: validMirrorUrl(m, '--registry-mirror') }));
  const insecure = [...(sources.insecureRegistries ?? [])];
  if (sources.configFile !== false) {
    // the default place may hold no file; one named by TSBUILD_CONFIG (or the caller) must exist (/dev/null: none)
    const named = sources.configFile ?? process.env.TSBUILD_CONFIG;
    const config = loadConfigFile(tsbuildConfigSchema, named || defaultConfigFile(), { optional: !named });
    dockerMirrors.push(...config['registry-mirrors'].map((m) => ({ location: validMirrorUrl(m, 'registry-mirrors') })));
    insecure.push(...config['insecure-registries']);
  }
  if (sources.daemonJson !== false) {
    const { file, named } = sources.daemonJson !== undefined ? { file: sources.daemonJson, named: true } : defaultDockerDaemonJson();
    const daemon = readDaemonJson(file, { named });
    for (const w of daemon.warnings) (sources.warn ?? warnOnce)(w);
    dockerMirrors.push(...daemon.mirrors);
    insecure.push(...daemon.insecure);
  }
  const mirrors: Record<string, MirrorSetting[]> = dockerMirrors.length ? { [DOCKER_HUB]: dockerMirrors } : {};
  if (sources.registriesConf !== false) {
    const conf = readRegistriesConf(sources.registriesConf ?? defaultRegistriesConf());
    for (const [registry, list] of Object.entries(conf.mirrors)) (mirrors[registry] ??= []).push(...list);
    insecure.push(...conf.insecure);
  }
  return { mirrors, insecureRegistries: insecure };
}
