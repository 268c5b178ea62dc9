import type { Config } from '../config/schema.ts';
import { storageOptions } from '../config/load.ts';
import { openStorage } from '../storage/index.ts';
import type { Storage } from '../storage/types.ts';
import { createLogger } from '../util/log.ts';
import { CommandError } from './errors.ts';

/** Runs `work` on the configured storage, closed afterwards; CommandError if it cannot be opened. */
export async function withStorage<T>(config: Config, work: (storage: Storage) => Promise<T>): Promise<T> {
  // Only warnings and errors: the command's own output is its result.
  const log = createLogger(config.general.loglevel === 'silent' ? 'silent' : 'warn', process.stderr);
  let storage: Storage;
  try {
    storage = await openStorage(storageOptions(config), log);
  } catch (err) {
    throw new CommandError(`cannot open the ${config.storage.backend} storage: ${(err as Error).message}`);
  }
  try {
    return await work(storage);
  } finally {
    await storage.close();
  }
}
