import { DOCKER_HUB } from '../../oci/index.js';
import { defaultConfigFile, loadConfigFile, tsbuildConfigSchema } from '../../config/index.js';
import type { MirrorSetting, RegistrySettings } from './hosts.js';
import { defaultRegistriesConf, readRegistriesConf } from './registries-conf.js';

export interface RegistrySettingsSources {
  /** `--registry-mirror URL` flags (mirrors of docker.io), tried before the config file's. */
  registryMirrors?: string[];
  /** `--insecure-registry HOST[:PORT]` flags. */
  insecureRegistries?: string[];
  /** The tsbuild config file; `false` to ignore it. Default: defaultConfigFile(). */
  configFile?: string | false;
  /** containers-registries.conf; `false` to ignore it. Default: /etc/containers/registries.conf. */
  registriesConf?: string | false;
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

/**
 * The registry settings the builder, pull and push share: flags first, then the tsbuild config file
 * (docker's `registry-mirrors` and `insecure-registries`), then podman's registries.conf.
 */
export function loadRegistrySettings(sources: RegistrySettingsSources = {}): RegistrySettings {
  const dockerMirrors: MirrorSetting[] = (sources.registryMirrors ?? []).map((m) => ({ location: validMirrorUrl(m, '--registry-mirror') }));
  const insecure = [...(sources.insecureRegistries ?? [])];
  if (sources.configFile !== false) {
    const config = loadConfigFile(tsbuildConfigSchema, sources.configFile ?? defaultConfigFile(), { optional: true });
    dockerMirrors.push(...config['registry-mirrors'].map((m) => ({ location: validMirrorUrl(m, 'registry-mirrors') })));
    insecure.push(...config['insecure-registries']);
  }
  const mirrors: Record<string, MirrorSetting[]> = dockerMirrors.length ? { [DOCKER_HUB]: dockerMirrors } : {};
  if (sources.registriesConf !== false) {
    const conf = readRegistriesConf(sources.registriesConf ?? defaultRegistriesConf());
    for (const [registry, list] of Object.entries(conf.mirrors)) (mirrors[registry] ??= []).push(...list);
    insecure.push(...conf.insecure);
  }
  return { mirrors, insecureRegistries: insecure };
}
