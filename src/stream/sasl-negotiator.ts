/**
 * The SASL part of a c2s stream (RFC 6120 §6): <auth>, <challenge>/<response>, <abort>,
 * <success>/<failure>, with retries, per-address and per-account failure throttling.
 */
import { el, type XmlElement } from '../xml/element.ts';
import { type SaslExchange, type SaslFailureCondition, type SaslPolicy, startExchange } from '../auth/sasl.ts';
import type { ChannelBinding } from '../auth/sasl.ts';
import { prepareLocalpart } from '../auth/precis.ts';
import { UNSUPPORTED_BINDING_TYPE } from '../auth/scram.ts';
import type { RateLimiter } from '../util/rate-limit.ts';
import type { ScramCredentials } from '../storage/types.ts';

export const NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';

export interface SaslLimits {
  maxAttempts: number;
  failuresByAddress: RateLimiter;
  failuresByAccount: RateLimiter;
}

export interface SaslNegotiatorDeps {
  policy: SaslPolicy;
  limits: SaslLimits;
  domain: string;
  remoteAddress: string;
  secure: boolean;
  channelBindings: ChannelBinding[];
  getCredentials(username: string): Promise<ScramCredentials | undefined>;
  send(element: XmlElement): void;
}

export type SaslProgress =
  | { state: 'continue' }
  | { state: 'authenticated'; username: string }
  /** Too many failed attempts: the stream must be closed with <not-authorized/>. */
  | { state: 'exhausted' };

/** One per -PLUS mechanism (SHA-1, SHA-256, SHA-512). */
const MAX_FREE_BINDING_MISSES = 3;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const ADDRESS_THROTTLED = 'too many failed attempts from this address; try again later';
const ACCOUNT_THROTTLED = 'too many failed attempts for this account; try again later';

export class SaslNegotiator {
  private exchange: SaslExchange | undefined;
  private mechanism = '';
  /** The username the client is trying, for per-account throttling. */
  private attemptedUser: string | undefined;
  private failures = 0;
  /** -PLUS attempts with a binding type we lack; no password was tried in them. */
  private bindingTypeMisses = 0;
  private readonly deps: SaslNegotiatorDeps;

  constructor(deps: SaslNegotiatorDeps) {
    this.deps = deps;
  }

  async handle(element: XmlElement): Promise<SaslProgress> {
    switch (element.name) {
      case 'auth':
        return this.start(element);
      case 'response':
        if (this.exchange === undefined) return this.fail('malformed-request', 'no authentication in progress');
        return this.step(element.text());
      case 'abort':
        this.exchange = undefined;
        return this.fail('aborted');
      default:
        return this.fail('malformed-request', `unexpected <${element.name}/>`);
    }
  }

  private async start(auth: XmlElement): Promise<SaslProgress> {
    const { deps } = this;
    const mechanism = auth.attrs.mechanism ?? '';
    if (deps.limits.failuresByAddress.blocked(deps.remoteAddress)) return this.fail('temporary-auth-failure', ADDRESS_THROTTLED);
    const exchange = startExchange(mechanism, deps.policy, {
      domain: deps.domain,
      secure: deps.secure,
      channelBindings: deps.channelBindings,
      noCommonBindingType: this.bindingTypeMisses > 0,
      getCredentials: deps.getCredentials,
    });
    if (exchange === undefined) return this.fail('invalid-mechanism', `mechanism '${mechanism}' is not offered`);
    this.exchange = exchange;
    this.mechanism = mechanism;
    this.attemptedUser = undefined;
    const text = auth.text();
    // No initial response: ask for one with an empty challenge (RFC 6120 §6.4.2).
    if (text === '') {
      deps.send(el('challenge', { xmlns: NS_SASL }));
      return { state: 'continue' };
    }
    return this.step(text);
  }

  private async step(text: string): Promise<SaslProgress> {
    const exchange = this.exchange;
    if (exchange === undefined) return { state: 'continue' };
    // '=' is an explicitly empty response (RFC 6120 §6.4.2).
    const trimmed = text.trim();
    if (trimmed !== '=' && (!BASE64.test(trimmed) || trimmed.length % 4 !== 0)) {
      this.exchange = undefined;
      return this.fail('incorrect-encoding');
    }
    const data = Buffer.from(trimmed === '=' ? '' : trimmed, 'base64');
    if (this.attemptedUser === undefined) {
      this.attemptedUser = attemptedUsername(this.mechanism, data);
      // A throttled account is refused before any password is tried.
      if (this.attemptedUser !== undefined && this.accountBlocked(this.attemptedUser)) {
        this.exchange = undefined;
        return this.fail('temporary-auth-failure', ACCOUNT_THROTTLED);
      }
    }
    const result = await exchange.step(data);
    if (result.kind === 'challenge') {
      this.deps.send(el('challenge', { xmlns: NS_SASL }, result.data.toString('base64')));
      return { state: 'continue' };
    }
    this.exchange = undefined;
    // Throttling that started while this exchange ran (other connections failing in
    // parallel) hides the outcome: telling a right password from a wrong one would let
    // parallel guesses through the limit.
    if (result.kind === 'success' || result.condition === 'not-authorized') {
      const username = result.kind === 'success' ? result.username : this.attemptedUser;
      if (this.deps.limits.failuresByAddress.blocked(this.deps.remoteAddress)) return this.fail('temporary-auth-failure', ADDRESS_THROTTLED);
      if (username !== undefined && this.accountBlocked(username)) return this.fail('temporary-auth-failure', ACCOUNT_THROTTLED);
    }
    if (result.kind === 'failure') return this.fail(result.condition, result.text);
    this.deps.send(el('success', { xmlns: NS_SASL }, result.data !== undefined && result.data.length > 0 ? result.data.toString('base64') : undefined));
    return { state: 'authenticated', username: result.username };
  }

  private accountBlocked(username: string): boolean {
    return this.deps.limits.failuresByAccount.blocked(accountKey(username, this.deps.domain));
  }

  private fail(condition: SaslFailureCondition, text?: string): SaslProgress {
    const { deps } = this;
    deps.send(el('failure', { xmlns: NS_SASL }, el(condition), text !== undefined && el('text', { 'xml:lang': 'en' }, text)));
    if (condition === 'not-authorized') {
      deps.limits.failuresByAddress.hit(deps.remoteAddress);
      if (this.attemptedUser !== undefined) deps.limits.failuresByAccount.hit(accountKey(this.attemptedUser, deps.domain));
    }
    if (condition === 'aborted') return { state: 'continue' };
    // A client may try each -PLUS mechanism with a binding type we lack before falling back:
    // those tries cost no password guess, so they don't use up the attempts.
    if (text === UNSUPPORTED_BINDING_TYPE && ++this.bindingTypeMisses <= MAX_FREE_BINDING_MISSES) return { state: 'continue' };
    this.failures++;
    return this.failures >= deps.limits.maxAttempts ? { state: 'exhausted' } : { state: 'continue' };
  }
}

function accountKey(username: string, domain: string): string {
  return `${username}@${domain}`;
}

/** The authentication identity in a first SASL message, prepared, or undefined. */
function attemptedUsername(mechanism: string, data: Buffer): string | undefined {
  let raw: string | undefined;
  const text = data.toString('utf8');
  if (mechanism === 'PLAIN') {
    raw = text.split('\0')[1];
  } else if (mechanism.startsWith('SCRAM-')) {
    // client-first-message = gs2-header ("n,," / "p=cb,a=authzid,") then "n=user,r=nonce"
    const bare = text.slice(text.indexOf(',', text.indexOf(',') + 1) + 1);
    raw = /^n=([^,]*),r=/.exec(bare)?.[1]?.replace(/=2C/g, ',').replace(/=3D/g, '=');
  }
  if (raw === undefined || raw === '') return undefined;
  try {
    return prepareLocalpart(raw);
  } catch {
    return undefined;
  }
}
