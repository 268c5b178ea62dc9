/**
 * The `meerkat` command line: `start` runs the server, `user ...` administers accounts,
 * `archive purge` deletes old archived messages.
 * Exit status: 0 success, 1 the command failed (bad config, account exists, ...), 2 the
 * command line is wrong. Errors are one line on stderr, prefixed `meerkat:`.
 */
import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { Config } from '../config/schema.ts';
import { CommandError, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError } from './errors.ts';

// Commands load the config, storage and server code on demand: help, version and usage
// errors answer without compiling the whole server.
export interface Output {
  out(line: string): void;
}

export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

const CONFIG_OPTION = '  -c, --config FILE    Configuration file (default: ./meerkat.toml when it exists,\n                       else the built-in defaults: localhost, data in ./data)';

const HELP: Record<string, string> = {
  general: `Usage: meerkat <command> [options]

Meerkat, an XMPP server.

Commands:
  start                  Run the server in the foreground (stops on SIGTERM/SIGINT)
  user add <jid>         Create an account
  user passwd <jid>      Set an account's password
  user remove <jid>      Delete an account and everything stored for it
  user list [<domain>]   List the accounts of one domain, or of every served domain
  archive purge --before DATE [--user JID]
                         Delete archived messages older than DATE
  help [<command>]       Show help for a command

Options:
${CONFIG_OPTION}
  -h, --help           Show help
      --version        Print the version

Configuration reference: docs/configuration.md; annotated example: meerkat.example.toml.`,

  start: `Usage: meerkat start [--config FILE]

Runs the server in the foreground, logging JSON lines to stderr. SIGTERM or SIGINT closes
every stream with <system-shutdown/>, flushes storage and exits (status 0).

Options:
${CONFIG_OPTION}`,

  user: `Usage:
  meerkat user add <jid> [--password-stdin] [--config FILE]
  meerkat user passwd <jid> [--password-stdin] [--config FILE]
  meerkat user remove <jid> [--config FILE]
  meerkat user list [<domain>] [--config FILE]

<jid> is name@domain, where domain is one of the configured hosts. The password is typed
twice at the terminal (not echoed), or read from the first line of standard input with
--password-stdin; it is never a command-line argument, which other users could see.
Works whether or not the server is running.

Options:
${CONFIG_OPTION}
      --password-stdin Read the password from the first line of standard input`,

  archive: `Usage:
  meerkat archive purge --before DATE [--user JID] [--config FILE]

Deletes the archived messages (XEP-0313) the server received before DATE, of every account
or of one. DATE is an ISO 8601 date (2025-01-31, midnight UTC) or date and time with a zone
(2025-01-31T12:00:00Z, 2025-01-31T12:00:00+01:00); a date in the future is refused. Deletes
in short transactions, so it can run while the server is running. Prints how many messages
were deleted. For a standing retention policy, set [modules.mam] max_age instead.

Options:
${CONFIG_OPTION}
      --before DATE      Delete what was received before this instant (required)
      --user JID         Only this account's archive`,

  help: `Usage: meerkat help [<command>]

Shows help for a command: start, user, archive.`,
};

interface CommandSpec {
  topic: string;
  /** Positional argument names; a trailing '?' marks an optional one. */
  args: string[];
  /** Options beyond --config and --help. */
  options?: ParseArgsConfig['options'];
  run(config: Config, args: string[], options: Record<string, string | boolean | undefined>, io: Output): Promise<void>;
}

const PASSWORD_STDIN = { 'password-stdin': { type: 'boolean' } } as const;
/** Command words that take a sub-command. */
const GROUPS: Record<string, string> = { user: 'add, passwd, remove or list', archive: 'purge' };

const COMMANDS: Record<string, CommandSpec> = {
  start: { topic: 'start', args: [], run: async (config) => (await import('./start.ts')).start(config) },
  'user add': { topic: 'user', args: ['jid'], options: PASSWORD_STDIN, run: async (c, [jid], o, io) => (await import('./user.ts')).userAdd(c, jid, o['password-stdin'] === true, io) },
  'user passwd': { topic: 'user', args: ['jid'], options: PASSWORD_STDIN, run: async (c, [jid], o, io) => (await import('./user.ts')).userPasswd(c, jid, o['password-stdin'] === true, io) },
  'user remove': { topic: 'user', args: ['jid'], run: async (c, [jid], _o, io) => (await import('./user.ts')).userRemove(c, jid, io) },
  'user list': { topic: 'user', args: ['domain?'], run: async (c, [domain], _o, io) => (await import('./user.ts')).userList(c, domain, io) },
  'archive purge': {
    topic: 'archive',
    args: [],
    options: { before: { type: 'string' }, user: { type: 'string' } },
    run: async (c, _args, o, io) => (await import('./archive.ts')).archivePurge(c, o.before as string | undefined, o.user as string | undefined, io),
  },
};

/** parseArgs' messages are long; say what is wrong in a few words. */
function usageFromParseError(err: Error & { code?: string }, topic: string | undefined): UsageError {
  const option = /'(?:-\w, )?(--?[\w-]+)/.exec(err.message)?.[1];
  switch (err.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return new UsageError(`unknown option ${option ?? err.message}`, topic);
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return new UsageError(option === undefined ? err.message : `option ${option} needs a value`, topic);
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return new UsageError(`unexpected argument ${/'([^']*)'/.exec(err.message)?.[1] ?? ''}`.trim(), topic);
    default:
      return new UsageError(err.message, topic);
  }
}

interface Parsed {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

function parse(argv: string[], options: ParseArgsConfig['options'], topic?: string, strict = true): Parsed {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict });
  } catch (err) {
    if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) throw usageFromParseError(err as Error, topic);
    throw err;
  }
}

function helpFor(words: string[]): string {
  const topic = words[0] ?? 'general';
  const text = HELP[topic];
  if (text === undefined) throw new UsageError(`no such command: ${topic}`);
  return text;
}

async function run(argv: string[], io: Output): Promise<void> {
  const common = { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } } as const;
  // First pass, lenient: find the command words, so that errors point at the right help.
  const everyOption = Object.assign({}, ...Object.values(COMMANDS).map((c) => c.options)) as ParseArgsConfig['options'];
  const first = parse(argv, { ...common, ...everyOption, version: { type: 'boolean' } }, undefined, false);
  const words = first.positionals;
  if (words.length === 0 || words[0] === 'help') parse(argv, { ...common, version: { type: 'boolean' } });
  if (first.values.version) return io.out(`meerkat ${version()}`);
  if (words.length === 0) {
    if (first.values.help) return io.out(HELP.general);
    throw new UsageError('no command given');
  }
  if (words[0] === 'help') return io.out(helpFor(words.slice(1)));

  const group = GROUPS[words[0]];
  const name = group === undefined ? words[0] : `${words[0]} ${words[1] ?? ''}`.trim();
  const spec = COMMANDS[name];
  if (spec === undefined) {
    if (group !== undefined) {
      if (first.values.help && words.length === 1) return io.out(HELP[words[0]]);
      throw new UsageError(words[1] === undefined ? `missing ${words[0]} command (${group})` : `unknown ${words[0]} command: ${words[1]}`, words[0]);
    }
    throw new UsageError(`unknown command: ${words[0]}`);
  }
  if (first.values.help) return io.out(HELP[spec.topic]);

  // Second pass: only the options this command takes.
  const parsed = parse(argv, { ...common, ...spec.options }, spec.topic);
  const args = parsed.positionals.slice(name.split(' ').length);
  const required = spec.args.filter((a) => !a.endsWith('?')).length;
  if (args.length < required) throw new UsageError(`missing <${spec.args[args.length]}> for meerkat ${name}`, spec.topic);
  if (args.length > spec.args.length) throw new UsageError(`unexpected argument ${JSON.stringify(args[spec.args.length])}`, spec.topic);

  const { loadConfig } = await import('../config/load.ts');
  const config = await loadConfig(parsed.values.config as string | undefined);
  await spec.run(config, args, parsed.values, io);
}

/** Runs the CLI; resolves to the exit status (`start` resolves once the server is up). */
export async function main(argv: string[], io: Output & { err(line: string): void } = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
}): Promise<number> {
  try {
    await run(argv, io);
    return EXIT_OK;
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`meerkat: ${err.message} (run 'meerkat ${err.topic === undefined ? '--help' : `help ${err.topic}`}' for usage)`);
      return EXIT_USAGE;
    }
    if (err instanceof CommandError || (err instanceof Error && err.name === 'ConfigError')) {
      io.err(`meerkat: ${err.message}`);
      return EXIT_FAILURE;
    }
    io.err(`meerkat: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return EXIT_FAILURE;
  }
}
