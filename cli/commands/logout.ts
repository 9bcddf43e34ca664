import { logout } from '../../registry/client/index.js';
import { type Command, UsageError } from '../command.js';

export const logoutCommand: Command = {
  name: 'logout',
  summary: "Remove a registry login from docker's config.json",
  usage: 'logout [HOST]',
  async run(ctx) {
    if (ctx.positionals.length > 1) throw new UsageError('expected at most one registry host: tsbuild logout [HOST]');
    const host = ctx.positionals[0] ?? 'docker.io';
    const removed = await logout(host);
    ctx.stdout.write(removed ? `Removing login credentials for ${host}\n` : `Not logged in to ${host}\n`);
  },
};
