/**
 * XEP-0092 Software Version of the server. The operating system is left out unless
 * `show_os` is on: it helps attackers more than it helps anyone else (§6).
 */
import os from 'node:os';
import { z } from 'zod';
import { defineModule } from '../api.ts';
import { el } from '../../xml/element.ts';

export const NS_VERSION = 'jabber:iq:version';

const config = z.object({
  show_os: z.boolean().default(false)
    .describe('Include the operating system (name and kernel release) in software version answers.'),
}).strict();

export default defineModule({
  name: 'version',
  config,
  setup(ctx) {
    const osName = ctx.config.show_os ? `${os.type()} ${os.release()}` : undefined;
    ctx.addFeature(NS_VERSION);
    ctx.handleIq({ xmlns: NS_VERSION, element: 'query', type: 'get', target: 'host' }, () => el(
      'query',
      { xmlns: NS_VERSION },
      el('name', {}, ctx.server.name),
      el('version', {}, ctx.server.version),
      osName !== undefined && el('os', {}, osName),
    ));
  },
});
