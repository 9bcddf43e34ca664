import type { Command } from '../command.js';

/**
 * Every subcommand, in the order `tsbuild --help` lists them. Modules load on demand: a command pulls in
 * only its own dependencies (the registry server's Koa stack stays unloaded for `tsbuild images`).
 */
const loaders: [string, () => Promise<Command>][] = [
  ['build', async () => (await import('./build.js')).buildCommand],
  ['images', async () => (await import('./images.js')).imagesCommand],
  ['tag', async () => (await import('./images.js')).tagCommand],
  ['rmi', async () => (await import('./images.js')).rmiCommand],
  ['inspect', async () => (await import('./images.js')).inspectCommand],
  ['history', async () => (await import('./history.js')).historyCommand],
  ['save', async () => (await import('./save.js')).saveCommand],
  ['load', async () => (await import('./load.js')).loadCommand],
  ['pull', async () => (await import('./pull.js')).pullCommand],
  ['push', async () => (await import('./push.js')).pushCommand],
  ['login', async () => (await import('./login.js')).loginCommand],
  ['logout', async () => (await import('./logout.js')).logoutCommand],
  ['registry', async () => (await import('./registry.js')).registryCommand],
  ['mirror', async () => (await import('./mirror.js')).mirrorCommand],
  ['prune', async () => (await import('./prune.js')).pruneCommand],
  ['system', async () => (await import('./system.js')).systemCommand],
  ['debug', async () => (await import('./debug.js')).debugCommand],
];

export async function allCommands(): Promise<Command[]> {
  return Promise.all(loaders.map(([, load]) => load()));
}

export async function findCommand(name: string): Promise<Command | undefined> {
  const entry = loaders.find(([n]) => n === name);
  return entry ? entry[1]() : undefined;
}
