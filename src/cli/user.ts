/**
 * `meerkat user add|passwd|remove|list`: account administration straight against the
 * configured storage (the server may be running; SQLite's write lock and PostgreSQL's
 * transactions keep both consistent). Names and passwords go through `Accounts`, which
 * PRECIS-prepares them and stores only salted SCRAM keys.
 */
import { Accounts, PrecisError } from '../auth/accounts.ts';
import type { Config } from '../config/schema.ts';
import { JidError, prepareDomainpart } from '../router/jid.ts';
import type { Storage, UserRef } from '../storage/types.ts';
import { CommandError } from './errors.ts';
import type { Output } from './main.ts';
import { readNewPassword } from './password.ts';
import { withStorage } from './storage.ts';

/** A served domain, normalised; CommandError otherwise. */
export function servedDomain(config: Config, input: string): string {
  let domain: string;
  try {
    domain = prepareDomainpart(input);
  } catch (err) {
    if (err instanceof JidError) throw new CommandError(`invalid domain ${JSON.stringify(input)}: ${err.message}`);
    throw err;
  }
  if (!config.general.hosts.includes(domain)) {
    throw new CommandError(`${domain} is not served by this server (hosts: ${config.general.hosts.join(', ')})`);
  }
  return domain;
}

/** `name@domain` → the account it denotes on a served domain; CommandError otherwise. */
export function accountOf(config: Config, jid: string): UserRef {
  const at = jid.indexOf('@');
  if (at <= 0 || at === jid.length - 1) throw new CommandError(`invalid JID ${JSON.stringify(jid)}: expected name@domain`);
  if (jid.includes('/', at)) throw new CommandError(`invalid JID ${JSON.stringify(jid)}: expected a bare JID, without /resource`);
  const domain = servedDomain(config, jid.slice(at + 1));
  try {
    return Accounts.ref(jid.slice(0, at), domain);
  } catch (err) {
    if (err instanceof PrecisError) throw new CommandError(`invalid JID ${JSON.stringify(jid)}: ${err.message}`);
    throw err;
  }
}

const jidOf = (user: UserRef) => `${user.username}@${user.domain}`;

function withAccounts<T>(config: Config, work: (accounts: Accounts, storage: Storage) => Promise<T>): Promise<T> {
  return withStorage(config, (storage) => work(new Accounts(storage, config.auth.scram_iterations), storage));
}

function usablePassword<T>(action: () => Promise<T>): Promise<T> {
  return action().catch((err: unknown) => {
    if (err instanceof PrecisError) throw new CommandError(`unusable password: ${err.message}`);
    throw err;
  });
}

export async function userAdd(config: Config, jid: string, passwordFromStdin: boolean, io: Output): Promise<void> {
  const user = accountOf(config, jid);
  const password = await readNewPassword(passwordFromStdin);
  await withAccounts(config, async (accounts) => {
    const created = await usablePassword(() => accounts.create(user, password));
    if (!created) throw new CommandError(`${jidOf(user)} already exists`);
  });
  io.out(`created ${jidOf(user)}`);
}

export async function userPasswd(config: Config, jid: string, passwordFromStdin: boolean, io: Output): Promise<void> {
  const user = accountOf(config, jid);
  // Fail before asking for a password the account cannot use.
  await withAccounts(config, async (_accounts, storage) => {
    if (!(await storage.users.exists(user))) throw new CommandError(`no such user: ${jidOf(user)}`);
  });
  const password = await readNewPassword(passwordFromStdin);
  await withAccounts(config, async (accounts) => {
    const changed = await usablePassword(() => accounts.setPassword(user, password));
    if (!changed) throw new CommandError(`no such user: ${jidOf(user)}`);
  });
  io.out(`password changed for ${jidOf(user)}`);
}

export async function userRemove(config: Config, jid: string, io: Output): Promise<void> {
  const user = accountOf(config, jid);
  await withAccounts(config, async (accounts) => {
    if (!(await accounts.remove(user))) throw new CommandError(`no such user: ${jidOf(user)}`);
  });
  io.out(`removed ${jidOf(user)}`);
}

export async function userList(config: Config, domain: string | undefined, io: Output): Promise<void> {
  const domains = domain === undefined ? config.general.hosts : [servedDomain(config, domain)];
  const jids = await withAccounts(config, async (_accounts, storage) => {
    const all: string[] = [];
    for (const d of domains) for (const username of await storage.users.list(d)) all.push(`${username}@${d}`);
    return all;
  });
  for (const jid of jids.sort()) io.out(jid);
}
