/** The two ways a command fails, and the exit status of each. */

/** The command line itself is wrong (unknown command or option, missing argument): exit 2. */
export class UsageError extends Error {
  override name = 'UsageError';
  /** The help topic to point at, e.g. 'user' (undefined: the general help). */
  readonly topic: string | undefined;

  constructor(message: string, topic?: string) {
    super(message);
    this.topic = topic;
  }
}

/** The command ran and could not do its job (bad config, account exists, ...): exit 1. */
export class CommandError extends Error {
  override name = 'CommandError';
}

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
