/** Every feature module the server knows, in load order (services before their users). */
import type { ModuleDefinition } from './api.ts';
import roster from './roster/index.ts';
import presence from './presence/index.ts';
import blocking from './blocking/index.ts';
import disco from './disco/index.ts';
import ping from './ping/index.ts';
import version from './version/index.ts';
import time from './time/index.ts';
import last from './last/index.ts';
import vcard from './vcard/index.ts';
import register from './register/index.ts';
import offline from './offline/index.ts';
import mam from './mam/index.ts';
import carbons from './carbons/index.ts';
import csi from './csi/index.ts';

export const allModules: ModuleDefinition[] = [roster, presence, blocking, disco, ping, version, time, last, vcard, register, offline, mam, carbons, csi];
