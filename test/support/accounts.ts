/** Accounts for tests, written straight into storage as the server would store them. */
import { deriveCredentials } from '../../src/auth/scram.ts';
import { parseJid } from '../../src/router/jid.ts';
import type { Storage } from '../../src/storage/types.ts';

export interface TestUser {
  username: string;
  domain: string;
  /** Bare JID. */
  jid: string;
  password: string;
}

/** `jid` is `name` (on the first host) or `name@domain`; fails if the account exists. */
export async function createAccount(storage: Storage, hosts: string[], iterations: number, jid: string, password: string): Promise<TestUser> {
  const parsed = parseJid(jid.includes('@') ? jid : `${jid}@${hosts[0]}`);
  if (!hosts.includes(parsed.domain)) throw new Error(`${parsed.domain} is not served by this test server`);
  const user = { username: parsed.local, domain: parsed.domain };
  const created = await storage.users.create(user, await deriveCredentials(password, iterations));
  if (!created) throw new Error(`account ${parsed.bare} already exists`);
  return { ...user, jid: parsed.bare, password };
}
