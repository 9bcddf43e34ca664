import { Store } from '../store/index.js';
import type { CommandContext } from './command.js';

export function openStore(ctx: CommandContext): Promise<Store> {
  return Store.open(ctx.root);
}
