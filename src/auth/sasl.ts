/**
 * The SASL mechanism registry the stream uses (RFC 6120 §6): which mechanisms to offer on a
 * connection, and one exchange object per authentication attempt.
 *
 * Mechanisms: SCRAM-SHA-{1,256,512} with and without -PLUS (./scram.ts) and PLAIN
 * (RFC 4616), which is checked against the stored SCRAM-SHA-256 keys since no plaintext
 * password is kept.
 */
import type { ScramCredentials, ScramHash } from '../storage/types.ts';
import { PrecisError, prepareLocalpart } from './precis.ts';
import { ScramServer, authzidMatches, fakeKeys, verifyPassword } from './scram.ts';

export type SaslFailureCondition =
  | 'aborted'
  | 'account-disabled'
  | 'credentials-expired'
  | 'encryption-required'
  | 'incorrect-encoding'
  | 'invalid-authzid'
  | 'invalid-mechanism'
  | 'malformed-request'
  | 'mechanism-too-weak'
  | 'not-authorized'
  | 'temporary-auth-failure';

export type SaslStep =
  | { kind: 'challenge'; data: Buffer }
  | { kind: 'success'; data?: Buffer; username: string } // username: PRECIS-prepared localpart
  | { kind: 'failure'; condition: SaslFailureCondition; text?: string };

export interface ChannelBinding {
  type: 'tls-exporter' | 'tls-server-end-point';
  data: Buffer;
}

export interface SaslContext {
  domain: string;
  /** TLS is active on the stream. */
  secure: boolean;
  /** What this TLS connection can bind to (empty without TLS). */
  channelBindings: ChannelBinding[];
  /**
   * A -PLUS attempt on this stream already asked for a binding type this connection lacks
   * (tls-unique over TLS 1.3, say): the client supports binding but no type in common, so a
   * later `y` flag is the truth, not a downgrade.
   */
  noCommonBindingType?: boolean;
  getCredentials(username: string): Promise<ScramCredentials | undefined>;
}

/** One authentication attempt. The first call gets the initial response (empty Buffer when none). */
export interface SaslExchange {
  step(response: Buffer): Promise<SaslStep>;
}

export interface SaslPolicy {
  mechanisms: string[];
  plainWithoutTls: boolean;
}

/** Every mechanism this server implements, strongest first (for the config schema). */
export const SUPPORTED_MECHANISMS = [
  'SCRAM-SHA-512-PLUS',
  'SCRAM-SHA-512',
  'SCRAM-SHA-256-PLUS',
  'SCRAM-SHA-256',
  'SCRAM-SHA-1-PLUS',
  'SCRAM-SHA-1',
  'PLAIN',
] as const;

export type SupportedMechanism = (typeof SUPPORTED_MECHANISMS)[number];

const SCRAM: Record<string, { hash: ScramHash; plus: boolean }> = {
  'SCRAM-SHA-512-PLUS': { hash: 'SHA-512', plus: true },
  'SCRAM-SHA-512': { hash: 'SHA-512', plus: false },
  'SCRAM-SHA-256-PLUS': { hash: 'SHA-256', plus: true },
  'SCRAM-SHA-256': { hash: 'SHA-256', plus: false },
  'SCRAM-SHA-1-PLUS': { hash: 'SHA-1', plus: true },
  'SCRAM-SHA-1': { hash: 'SHA-1', plus: false },
};

const SUPPORTED = new Set<string>(SUPPORTED_MECHANISMS);

/**
 * The mechanisms to advertise, in policy order: -PLUS only with channel binding (which
 * implies TLS), PLAIN only over TLS unless `plainWithoutTls`; unknown names are skipped.
 */
export function offeredMechanisms(policy: SaslPolicy, secure: boolean, channelBindingAvailable: boolean): string[] {
  return policy.mechanisms.filter((m) => {
    if (!SUPPORTED.has(m)) return false;
    if (m.endsWith('-PLUS')) return secure && channelBindingAvailable;
    if (m === 'PLAIN') return secure || policy.plainWithoutTls;
    return true;
  });
}

/** An exchange for the mechanism the client selected, or undefined when it is not offered here. */
export function startExchange(mechanism: string, policy: SaslPolicy, ctx: SaslContext): SaslExchange | undefined {
  const offered = offeredMechanisms(policy, ctx.secure, ctx.channelBindings.length > 0);
  if (!offered.includes(mechanism)) return undefined;
  if (mechanism === 'PLAIN') return new PlainExchange(ctx);
  const scram = SCRAM[mechanism];
  return new ScramServer({
    hash: scram.hash,
    plus: scram.plus,
    domain: ctx.domain,
    channelBindings: ctx.channelBindings,
    plusOffered: offered.some((m) => m.endsWith('-PLUS')) && ctx.noCommonBindingType !== true,
    getCredentials: (username) => ctx.getCredentials(username),
  });
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** PLAIN (RFC 4616): `[authzid] NUL authcid NUL passwd`. */
class PlainExchange implements SaslExchange {
  private done = false;
  private askedForInitial = false;

  constructor(private readonly ctx: SaslContext) {}

  async step(response: Buffer): Promise<SaslStep> {
    if (this.done) return { kind: 'failure', condition: 'malformed-request', text: 'exchange already finished' };
    if (response.length === 0 && !this.askedForInitial) {
      this.askedForInitial = true;
      return { kind: 'challenge', data: Buffer.alloc(0) };
    }
    this.done = true;
    let message: string;
    try {
      message = utf8.decode(response);
    } catch {
      return { kind: 'failure', condition: 'malformed-request', text: 'invalid UTF-8' };
    }
    const parts = message.split('\0');
    if (parts.length !== 3 || parts[1] === '' || parts[2] === '') {
      return { kind: 'failure', condition: 'malformed-request', text: 'expected authzid NUL authcid NUL passwd' };
    }
    const [authzid, authcid, password] = parts;
    let username: string;
    try {
      username = prepareLocalpart(authcid);
    } catch (err) {
      if (err instanceof PrecisError) return { kind: 'failure', condition: 'not-authorized' };
      throw err;
    }
    if (authzid !== '' && !authzidMatches(authzid, username, this.ctx.domain)) {
      return { kind: 'failure', condition: 'invalid-authzid' };
    }
    let credentials: ScramCredentials | undefined;
    try {
      credentials = await this.ctx.getCredentials(username);
    } catch {
      return { kind: 'failure', condition: 'temporary-auth-failure' };
    }
    // An unknown user costs the same key derivation as a known one, and fails the same way.
    const keys = credentials?.['SHA-256'] ?? fakeKeys('SHA-256', username);
    const ok = await verifyPassword('SHA-256', keys, password);
    if (!ok || credentials === undefined) return { kind: 'failure', condition: 'not-authorized' };
    return { kind: 'success', username };
  }
}
