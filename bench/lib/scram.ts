/**
 * Client side of SASL SCRAM (RFC 5802 / RFC 7677, no channel binding) and PLAIN for the load
 * generator. The expensive Hi() (PBKDF2) result is cached per password, salt and iteration
 * count, as real clients do, so repeated logins cost the generator only a few HMACs; the
 * cache can be turned off to measure cold logins.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';

export type ScramMechanism = 'SCRAM-SHA-1' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512';

const DIGESTS: Record<ScramMechanism, { name: string; size: number }> = {
  'SCRAM-SHA-1': { name: 'sha1', size: 20 },
  'SCRAM-SHA-256': { name: 'sha256', size: 32 },
  'SCRAM-SHA-512': { name: 'sha512', size: 64 },
};

interface Keys {
  clientKey: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

const cache = new Map<string, Keys>();
let cacheEnabled = true;
/** Time spent in PBKDF2 by this process (ms), to tell generator cost from server cost. */
export const scramCost = { pbkdf2Ms: 0, pbkdf2Calls: 0 };

export function setSaltedPasswordCache(enabled: boolean): void {
  cacheEnabled = enabled;
  if (!enabled) cache.clear();
}

function keysFor(mechanism: ScramMechanism, password: string, salt: string, iterations: number): Keys {
  const key = `${mechanism}\0${iterations}\0${salt}\0${password}`;
  const cached = cacheEnabled ? cache.get(key) : undefined;
  if (cached !== undefined) return cached;
  const { name, size } = DIGESTS[mechanism];
  const t0 = performance.now();
  const salted = pbkdf2Sync(Buffer.from(password, 'utf8'), Buffer.from(salt, 'base64'), iterations, size, name);
  scramCost.pbkdf2Ms += performance.now() - t0;
  scramCost.pbkdf2Calls++;
  const clientKey = createHmac(name, salted).update('Client Key').digest();
  const keys = {
    clientKey,
    storedKey: createHash(name).update(clientKey).digest(),
    serverKey: createHmac(name, salted).update('Server Key').digest(),
  };
  if (cacheEnabled) cache.set(key, keys);
  return keys;
}

function saslName(name: string): string {
  return name.replace(/=/g, '=3D').replace(/,/g, '=2C');
}

/** One SCRAM conversation: first() → final(serverFirst) → verify(serverFinal). */
export class ScramClient {
  private readonly mechanism: ScramMechanism;
  private readonly password: string;
  private readonly nonce = randomBytes(18).toString('base64');
  private readonly clientFirstBare: string;
  private expectedServerSignature = '';

  constructor(mechanism: ScramMechanism, username: string, password: string) {
    this.mechanism = mechanism;
    this.password = password;
    this.clientFirstBare = `n=${saslName(username)},r=${this.nonce}`;
  }

  first(): string {
    return `n,,${this.clientFirstBare}`;
  }

  final(serverFirst: string): string {
    const attrs = new Map<string, string>();
    for (const part of serverFirst.split(',')) if (part[1] === '=') attrs.set(part[0], part.slice(2));
    const nonce = attrs.get('r');
    const salt = attrs.get('s');
    const iterations = Number(attrs.get('i'));
    if (nonce === undefined || !nonce.startsWith(this.nonce) || salt === undefined || !(iterations > 0)) {
      throw new Error(`bad server-first-message: ${serverFirst}`);
    }
    const { name } = DIGESTS[this.mechanism];
    const keys = keysFor(this.mechanism, this.password, salt, iterations);
    const withoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    const signature = createHmac(name, keys.storedKey).update(authMessage).digest();
    const proof = Buffer.alloc(signature.length);
    for (let i = 0; i < proof.length; i++) proof[i] = keys.clientKey[i] ^ signature[i];
    this.expectedServerSignature = createHmac(name, keys.serverKey).update(authMessage).digest('base64');
    return `${withoutProof},p=${proof.toString('base64')}`;
  }

  /** Checks the server's `v=` (the server proved it knows the keys). */
  verify(serverFinal: string): boolean {
    return serverFinal === `v=${this.expectedServerSignature}`;
  }
}

export function plainResponse(username: string, password: string): string {
  return Buffer.from(`\0${username}\0${password}`, 'utf8').toString('base64');
}

export function isScram(mechanism: string): mechanism is ScramMechanism {
  return mechanism in DIGESTS;
}
