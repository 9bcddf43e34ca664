import type { Command } from '../command.js';
import { imagesCommand, tagCommand, rmiCommand, inspectCommand } from './images.js';
import { saveCommand } from './save.js';
import { loadCommand } from './load.js';
import { registryCommand } from './registry.js';
import { pullCommand } from './pull.js';
import { pushCommand } from './push.js';
import { loginCommand } from './login.js';
import { logoutCommand } from './logout.js';
import { buildCommand } from './build.js';
import { debugCommand } from './debug.js';

/** Every subcommand, in the order `tsbuild --help` lists them. */
export const commands: Command[] = [buildCommand, imagesCommand, tagCommand, rmiCommand, inspectCommand, saveCommand, loadCommand, pullCommand, pushCommand, loginCommand, logoutCommand, registryCommand, debugCommand];

export function findCommand(name: string): Command | undefined {
  return commands.find((c) => c.name === name || c.aliases?.includes(name));
}
