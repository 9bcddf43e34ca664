export * from './server/index.js';
export * from './client/index.js';
export * from './mirror/index.js';
