/** Every feature module the server ships, by config name. */
import type { ModuleDefinition } from './api.ts';

export const allModules: ModuleDefinition[] = [];
