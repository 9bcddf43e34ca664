export * from './digest.js';
export * from './media-types.js';
export * from './reference.js';
export * from './image-types.js';
