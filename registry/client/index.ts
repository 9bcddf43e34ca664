export { RegistryClient, registryErrorDetail, type RegistryClientOptions, type RegistryRequest } from './client.js';
export { pullImage, type PullOptions, type PullResult } from './pull.js';
export { pushImage, type PushOptions, type PushResult } from './push.js';
export { fetchManifest, headManifest, manifestAccept, type FetchedManifest, type ManifestHead } from './manifest.js';
export { openBlob, statBlob, type OpenedBlob } from './blob-open.js';
export { fetchBlob } from './blob-fetch.js';
export { Authenticator, parseChallenges, repositoryScope, mergeScopes, type Challenge, type CredentialSource } from './auth.js';
export { DockerCredentials, dockerConfigFile, authKey, DOCKER_HUB_AUTH_KEY, type Credentials } from './credentials.js';
export { login, logout, type LoginOptions } from './login.js';
export {
  endpointsFor,
  endpointRepository,
  describeEndpoint,
  emptySettings,
  InsecureMatcher,
  DOCKER_HUB_API,
  type Endpoint,
  type MirrorSetting,
  type RegistrySettings,
} from './hosts.js';
export { loadRegistrySettings, type RegistrySettingsSources } from './settings.js';
export {
  readDaemonJson,
  daemonJsonFromText,
  defaultDockerDaemonJson,
  DOCKER_DAEMON_JSON,
  DOCKER_DAEMON_JSON_ENV,
  type DaemonJsonRegistries,
} from './daemon-json.js';
export { readRegistriesConf, parseRegistriesConf, defaultRegistriesConf, type ContainersRegistries } from './registries-conf.js';
export { Transport, type TransportOptions, type HttpRequest, type HttpResponse } from './transport.js';
export type { ProgressEvent, ProgressListener, BlobPhase } from './progress-events.js';
export { BlobSources } from './blob-sources.js';
export * from './errors.js';
