/** `meerkat start`: run the server until SIGTERM/SIGINT. */
import type { Config } from '../config/schema.ts';
import { CommandError } from './errors.ts';

export async function start(config: Config): Promise<void> {
  // Loaded on demand so `meerkat user ...` and `--help` do not load the whole server.
  const { startServer } = await import('../server.ts');
  try {
    await startServer(config, { handleSignals: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
      throw new CommandError(`cannot listen: ${(err as Error).message}`);
    }
    throw new CommandError(`cannot start: ${(err as Error).message}`);
  }
}
