import { pino, type Logger } from 'pino';

/**
 * The server's logger. Stanzas are never logged whole at info level; these paths are
 * redacted wherever they appear, as a second line of defence against a careless log call.
 */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: undefined,
      redact: {
        paths: ['password', '*.password', 'body', '*.body', 'token', '*.token', 'credentials', '*.credentials'],
        censor: '[redacted]',
      },
    },
    destination ?? pino.destination({ fd: 2, sync: false }),
  );
}
