export * from './digest.js';
export * from './media-types.js';
export * from './reference.js';
export * from './image-types.js';
export * from './image-document.js';
export { parseJsonTree, JsonSyntaxError, type JsonNode, type JsonObject, type JsonArray, type JsonString, type JsonNumber } from './json-tree.js';
export { GoStruct, JsonFieldError, goFoldKey, childPath, readStruct, readString, readStringList, readStringMap, readArray, readInteger } from './go-json.js';
export { mapLimit } from './concurrency.js';
export { processAlive } from './process.js';
