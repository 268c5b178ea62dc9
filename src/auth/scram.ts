/**
 * SCRAM (RFC 5802, RFC 7677) server side for SHA-1, SHA-256 and SHA-512, with and without
 * channel binding (-PLUS, RFC 5802 §6; tls-exporter RFC 9266, tls-server-end-point RFC 5929).
 *
 * Failures map SCRAM's `e=` values onto RFC 6120 SASL conditions; the `e=` value (or a
 * short reason) goes into the failure text. An unknown user gets a fake salt derived from an
 * HMAC of the username under a per-process secret and fails exactly like a wrong password,
 * at the final step with `invalid-proof`.
 */
import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import { randomString } from '../util/random.ts';
import { promisify } from 'node:util';
import type { ScramCredentials, ScramHash, ScramKeys } from '../storage/types.ts';
import type { ChannelBinding, SaslExchange, SaslFailureCondition, SaslStep } from './sasl.ts';
import { PrecisError, prepareLocalpart, preparePassword } from './precis.ts';
import { tryParseJid } from '../router/jid.ts';

export const SCRAM_HASHES: readonly ScramHash[] = ['SHA-1', 'SHA-256', 'SHA-512'];

/** RFC 7677 §4: at least 4096 iterations. */
export const MIN_ITERATIONS = 4096;

const SALT_BYTES = 16;

const DIGEST: Record<ScramHash, { name: string; size: number }> = {
  'SHA-1': { name: 'sha1', size: 20 },
  'SHA-256': { name: 'sha256', size: 32 },
  'SHA-512': { name: 'sha512', size: 64 },
};

const pbkdf2Async = promisify(pbkdf2);

function hmac(hash: ScramHash, key: Buffer, data: string | Buffer): Buffer {
  return createHmac(DIGEST[hash].name, key).update(data).digest();
}

function h(hash: ScramHash, data: Buffer): Buffer {
  return createHash(DIGEST[hash].name).update(data).digest();
}

/** SaltedPassword = Hi(password, salt, i) (RFC 5802 §3); the password must already be prepared. */
export function saltPassword(hash: ScramHash, preparedPassword: string, salt: Buffer, iterations: number): Promise<Buffer> {
  return pbkdf2Async(Buffer.from(preparedPassword, 'utf8'), salt, iterations, DIGEST[hash].size, DIGEST[hash].name);
}

/** StoredKey and ServerKey from a SaltedPassword. */
export function keysFromSaltedPassword(hash: ScramHash, salted: Buffer, salt: Buffer, iterations: number): ScramKeys {
  const clientKey = hmac(hash, salted, 'Client Key');
  return { salt, iterations, storedKey: h(hash, clientKey), serverKey: hmac(hash, salted, 'Server Key') };
}

function checkIterations(iterations: number): void {
  if (!Number.isSafeInteger(iterations) || iterations < MIN_ITERATIONS) {
    throw new RangeError(`SCRAM iteration count must be an integer of at least ${MIN_ITERATIONS}`);
  }
}

/** Keys for one hash with a given salt; the password is prepared (OpaqueString) here. Throws PrecisError. */
export async function deriveKeys(hash: ScramHash, password: string, salt: Buffer, iterations: number): Promise<ScramKeys> {
  checkIterations(iterations);
  const salted = await saltPassword(hash, preparePassword(password), salt, iterations);
  return keysFromSaltedPassword(hash, salted, salt, iterations);
}

/**
 * Salted keys for every hash, each with its own random 16-byte salt. Throws PrecisError for
 * a password OpaqueString rejects, RangeError for fewer than 4096 iterations.
 */
export async function deriveCredentials(password: string, iterations: number): Promise<ScramCredentials> {
  checkIterations(iterations);
  const prepared = preparePassword(password);
  const [sha1, sha256, sha512] = await Promise.all(
    SCRAM_HASHES.map(async (hash) => {
      const salt = randomBytes(SALT_BYTES);
      return keysFromSaltedPassword(hash, await saltPassword(hash, prepared, salt, iterations), salt, iterations);
    }),
  );
  return { 'SHA-1': sha1, 'SHA-256': sha256, 'SHA-512': sha512 };
}

/** Check a plaintext password (for PLAIN) against stored keys, in constant time for the comparison. */
export async function verifyPassword(hash: ScramHash, keys: ScramKeys, password: string): Promise<boolean> {
  let prepared: string;
  try {
    prepared = preparePassword(password);
  } catch (err) {
    if (err instanceof PrecisError) return false;
    throw err;
  }
  const salted = await saltPassword(hash, prepared, keys.salt, keys.iterations);
  const storedKey = h(hash, hmac(hash, salted, 'Client Key'));
  return storedKey.length === keys.storedKey.length && timingSafeEqual(storedKey, keys.storedKey);
}

// ---- unknown users ----

const FAKE_SECRET = randomBytes(32);
/** Iteration counts seen on real accounts, so fake ones look the same. */
const observedIterations: Partial<Record<ScramHash, number>> = {};

/**
 * Keys for an account that does not exist: a salt that is stable for the username (so
 * repeated probes see the same one, as for a real account) and random keys no proof matches.
 */
export function fakeKeys(hash: ScramHash, username: string): ScramKeys {
  const salt = createHmac('sha256', FAKE_SECRET).update(`${hash}\0${username}`).digest().subarray(0, SALT_BYTES);
  const size = DIGEST[hash].size;
  return {
    salt,
    iterations: observedIterations[hash] ?? MIN_ITERATIONS,
    storedKey: randomBytes(size),
    serverKey: randomBytes(size),
  };
}

function noteIterations(hash: ScramHash, iterations: number): void {
  observedIterations[hash] = iterations;
}

// ---- message syntax helpers ----

const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeUtf8(data: Buffer): string | undefined {
  try {
    return utf8.decode(data);
  } catch {
    return undefined;
  }
}

const RE_SASLNAME = /^(?:[^=,]|=2C|=3D)+$/;

/** RFC 5802 saslname: `=2C` is ',' and `=3D` is '='; any other '=' is invalid (undefined). */
export function decodeSaslName(s: string): string | undefined {
  if (!RE_SASLNAME.test(s)) return undefined;
  return s.replace(/=2C|=3D/g, (m) => (m === '=2C' ? ',' : '='));
}

const RE_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function decodeBase64(s: string): Buffer | undefined {
  return RE_BASE64.test(s) ? Buffer.from(s, 'base64') : undefined;
}

const RE_NONCE = /^[\x21-\x2b\x2d-\x7e]+$/;
const RE_GS2 = /^(n|y|p=([A-Za-z0-9.-]+)),(?:a=([^,]*))?,/;

const RE_ATTR_VAL = /^[A-Za-z]=/;

/** Attributes after the first two are extensions (attr-val pairs), which are ignored. */
function extensionsOk(attrs: string[]): boolean {
  for (let i = 2; i < attrs.length; i++) if (!RE_ATTR_VAL.test(attrs[i])) return false;
  return true;
}

function safeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The authorization identity is acceptable: the user's own bare JID. */
export function authzidMatches(authzid: string, username: string, domain: string): boolean {
  const requested = tryParseJid(authzid);
  const self = tryParseJid(`${username}@${domain}`);
  return requested !== undefined && self !== undefined && requested.isBare && requested.bare === self.bare;
}

function defaultNonce(): string {
  return randomString(24, 'base64'); // base64 has no ','
}

// ---- the server mechanism ----

/** Failure text for a -PLUS attempt with a channel-binding type the connection lacks. */
export const UNSUPPORTED_BINDING_TYPE = 'unsupported-channel-binding-type';

export interface ScramServerOptions {
  hash: ScramHash;
  /** The -PLUS variant was selected: the client must bind to the channel. */
  plus: boolean;
  /** The host the client authenticates to (for the authzid check). */
  domain: string;
  /** Channel bindings this connection offers (empty without TLS). */
  channelBindings: readonly ChannelBinding[];
  /** The server advertised a -PLUS mechanism: a client sending `y` is being downgraded. */
  plusOffered: boolean;
  getCredentials(username: string): Promise<ScramCredentials | undefined>;
  /** The server's nonce part; random by default (injectable for tests). */
  nonce?: () => string;
}

interface FirstState {
  username: string;
  keys: ScramKeys;
  clientFirstBare: string;
  serverFirst: string;
  nonce: string;
  /** The `c=` value the client must send: GS2 header plus channel binding data. */
  cbInput: Buffer;
}

export class ScramServer implements SaslExchange {
  private phase: 'start' | 'final' | 'done' = 'start';
  private askedForInitial = false;
  private first: FirstState | undefined;

  constructor(private readonly options: ScramServerOptions) {}

  async step(response: Buffer): Promise<SaslStep> {
    switch (this.phase) {
      case 'start':
        if (response.length === 0 && !this.askedForInitial) {
          this.askedForInitial = true; // no initial response: ask for it with an empty challenge
          return { kind: 'challenge', data: Buffer.alloc(0) };
        }
        return this.clientFirst(response);
      case 'final':
        return this.clientFinal(response);
      default:
        return this.fail('malformed-request', 'exchange already finished');
    }
  }

  private fail(condition: SaslFailureCondition, text: string): SaslStep {
    this.phase = 'done';
    this.first = undefined;
    return { kind: 'failure', condition, text };
  }

  private async clientFirst(response: Buffer): Promise<SaslStep> {
    const { hash, plus, channelBindings } = this.options;
    const text = decodeUtf8(response);
    if (text === undefined) return this.fail('malformed-request', 'invalid-encoding');
    const gs2 = RE_GS2.exec(text);
    if (!gs2) return this.fail('malformed-request', 'invalid GS2 header');
    const [gs2Header, flag, cbName, rawAuthzid] = gs2;
    const clientFirstBare = text.slice(gs2Header.length);

    // Channel binding negotiation (RFC 5802 §6).
    let binding: ChannelBinding | undefined;
    if (flag === 'y' || flag === 'n') {
      if (plus) return this.fail('malformed-request', 'a -PLUS mechanism requires channel binding (p=)');
      if (flag === 'y' && this.options.plusOffered && channelBindings.length > 0) {
        return this.fail('not-authorized', 'server-does-support-channel-binding');
      }
    } else {
      if (!plus) return this.fail('malformed-request', 'channel-binding-not-supported');
      binding = channelBindings.find((b) => b.type === cbName);
      if (!binding) return this.fail('malformed-request', UNSUPPORTED_BINDING_TYPE);
    }

    // client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
    const attrs = clientFirstBare.split(',');
    if (attrs[0].startsWith('m=')) return this.fail('malformed-request', 'extensions-not-supported');
    if (attrs.length < 2 || !attrs[0].startsWith('n=') || !attrs[1].startsWith('r=') || !extensionsOk(attrs)) {
      return this.fail('malformed-request', 'invalid-encoding');
    }
    const clientNonce = attrs[1].slice(2);
    if (!RE_NONCE.test(clientNonce)) return this.fail('malformed-request', 'invalid-encoding');
    const decoded = decodeSaslName(attrs[0].slice(2));
    if (decoded === undefined) return this.fail('malformed-request', 'invalid-username-encoding');
    let username: string;
    try {
      username = prepareLocalpart(decoded);
    } catch (err) {
      if (err instanceof PrecisError) return this.fail('not-authorized', 'invalid-username-encoding');
      throw err;
    }

    if (rawAuthzid !== undefined) {
      const authzid = decodeSaslName(rawAuthzid);
      if (authzid === undefined) return this.fail('malformed-request', 'invalid-username-encoding');
      if (!authzidMatches(authzid, username, this.options.domain)) return this.fail('invalid-authzid', 'invalid-authzid');
    }

    let credentials: ScramCredentials | undefined;
    try {
      credentials = await this.options.getCredentials(username);
    } catch {
      return this.fail('temporary-auth-failure', 'no-resources');
    }
    let keys = credentials?.[hash];
    if (keys) noteIterations(hash, keys.iterations);
    else keys = fakeKeys(hash, username);

    const serverNonce = (this.options.nonce ?? defaultNonce)();
    const nonce = clientNonce + serverNonce;
    const serverFirst = `r=${nonce},s=${keys.salt.toString('base64')},i=${keys.iterations}`;
    this.first = {
      username,
      keys,
      clientFirstBare,
      serverFirst,
      nonce,
      cbInput: Buffer.concat([Buffer.from(gs2Header, 'utf8'), binding?.data ?? Buffer.alloc(0)]),
    };
    this.phase = 'final';
    return { kind: 'challenge', data: Buffer.from(serverFirst, 'utf8') };
  }

  private clientFinal(response: Buffer): SaslStep {
    const first = this.first!;
    const { hash } = this.options;
    const text = decodeUtf8(response);
    if (text === undefined) return this.fail('malformed-request', 'invalid-encoding');
    // client-final-message = channel-binding "," nonce ["," extensions] "," proof
    const proofAt = text.lastIndexOf(',p=');
    if (proofAt === -1) return this.fail('malformed-request', 'invalid-encoding');
    const withoutProof = text.slice(0, proofAt);
    const attrs = withoutProof.split(',');
    if (attrs.length < 2 || !attrs[0].startsWith('c=') || !attrs[1].startsWith('r=') || !extensionsOk(attrs)) {
      return this.fail('malformed-request', 'invalid-encoding');
    }
    const cb = decodeBase64(attrs[0].slice(2));
    const proof = decodeBase64(text.slice(proofAt + 3));
    if (cb === undefined || proof === undefined) return this.fail('malformed-request', 'invalid-encoding');
    if (!safeEqual(cb, first.cbInput)) return this.fail('not-authorized', 'channel-bindings-dont-match');
    if (attrs[1].slice(2) !== first.nonce) return this.fail('not-authorized', 'other-error');

    const authMessage = `${first.clientFirstBare},${first.serverFirst},${withoutProof}`;
    const { storedKey, serverKey } = first.keys;
    const clientSignature = hmac(hash, storedKey, authMessage);
    if (proof.length !== clientSignature.length) return this.fail('not-authorized', 'invalid-proof');
    const clientKey = Buffer.alloc(proof.length);
    for (let i = 0; i < proof.length; i++) clientKey[i] = proof[i] ^ clientSignature[i];
    if (!safeEqual(h(hash, clientKey), storedKey)) return this.fail('not-authorized', 'invalid-proof');

    const serverSignature = hmac(hash, serverKey, authMessage);
    this.phase = 'done';
    this.first = undefined;
    return {
      kind: 'success',
      data: Buffer.from(`v=${serverSignature.toString('base64')}`, 'utf8'),
      username: first.username,
    };
  }
}
