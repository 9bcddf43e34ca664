export { MirrorRegistry, type MirrorOptions } from './mirror-registry.js';
export { MirrorMetrics } from './metrics.js';
export { routeName, cachedName, type Route } from './routing.js';
export { Upstream, DEFAULT_TAG_TTL_MS, type MirrorUpstreamOptions } from './upstream.js';
