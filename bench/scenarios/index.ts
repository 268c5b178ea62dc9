/** Every scenario, by name. A new scenario is one file in this folder plus a line here. */
import type { Scenario } from '../lib/scenario.ts';
import login from './login.ts';
import idle from './idle.ts';
import chat from './chat.ts';
import relay from './relay.ts';
import archive from './archive.ts';

export const scenarios: Record<string, Scenario> = { login, idle, chat, relay, archive };
