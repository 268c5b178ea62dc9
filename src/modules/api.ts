/**
 * What a feature module sees of the server. A module is instantiated once per virtual host
 * it is enabled for; everything it registers is scoped to that host.
 */
import type { z } from 'zod';
import type { Logger } from 'pino';
import type { XmlElement } from '../xml/element.ts';
import type { StreamErrorCondition } from '../xml/errors.ts';
import type { Jid } from '../router/jid.ts';
import type { Storage, UserRef } from '../storage/types.ts';
import type { Accounts } from '../auth/accounts.ts';

/** A bound client session as modules see it. */
export interface Session {
  readonly id: string;
  /** The full JID bound to this session. */
  readonly jid: Jid;
  readonly user: UserRef;
  /** The stream is encrypted (TLS), so secrets such as a new password may cross it. */
  readonly secure: boolean;
  /** The last available presence the client broadcast, or undefined while unavailable. */
  presence: XmlElement | undefined;
  /** Priority of the current available presence (0 when none). */
  priority: number;
  /** Has sent initial presence: receives presence broadcasts (RFC 6121 §4.2). */
  interested: boolean;
  /** Has requested the roster: receives roster pushes (RFC 6121 §2.1.6). */
  rosterRequested: boolean;
  /** Per-module state, keyed by module name. */
  readonly data: Map<string, unknown>;
  /** Queue a stanza for the client. */
  send(stanza: XmlElement): void;
  /**
   * Let a module see every stanza before it is written to this session (to hold some back, as
   * client state indication does). One filter per session; undefined removes it.
   */
  setOutboundFilter(filter: OutboundFilter | undefined): void;
  /** The filter in place, if any. */
  readonly outboundFilter: OutboundFilter | undefined;
  /**
   * Write a stanza past the outbound filter. With stream management it is queued until the
   * client acknowledges it, also while the connection is lost and the session waits to be
   * resumed; once the session has ended it is handled as undeliverable (a message goes to
   * offline storage).
   */
  deliver(stanza: XmlElement): void;
  /** Close the stream with an error. */
  close(condition?: StreamErrorCondition, text?: string): void;
}

/** What a module puts between a session and its client (see Session.setOutboundFilter). */
export interface OutboundFilter {
  /** Sees each stanza for the session; true means the filter took it, to `deliver` it later. */
  hold(stanza: XmlElement): boolean;
  /**
   * Hand back everything held, oldest first, and hold nothing more. The stream calls it when
   * the session ends (what was held is then undeliverable, so a held message goes to offline
   * storage) and when a stream is resumed (XEP-0352 §5.2: a resumed stream starts active, so
   * the stream delivers what was held and removes the filter).
   */
  release(): XmlElement[];
}

/**
 * Hook events and their payloads. Handlers run highest priority first; a handler that
 * returns true has handled the event and stops the chain. Priorities of zero and above
 * inspect, refuse or start storage writes; negative ones deliver, and for a client's
 * messages run only after its earlier messages were handled (see HookBus).
 */
export interface HookEvents {
  /** A client bound a resource. */
  'session:bound': { session: Session };
  /** A session ended; `clean` is false for a dropped connection or stream error. */
  'session:closed': { session: Session; clean: boolean };
  /** A client sent a message (its `from` already stamped), before it is routed. */
  'message:outbound': { session: Session; stanza: XmlElement };
  /** A client sent a presence (its `from` already stamped), before it is routed. */
  'presence:outbound': { session: Session; stanza: XmlElement };
  /** A client sent an IQ (its `from` already stamped), before it is routed. */
  'iq:outbound': { session: Session; stanza: XmlElement };
  /** A stanza arrives for a local account's bare JID. `to` is parsed and normalised. */
  'message:bare': { stanza: XmlElement; to: Jid };
  'presence:bare': { stanza: XmlElement; to: Jid };
  /** A stanza arrives for a local full JID (the session may or may not exist). */
  'message:full': { stanza: XmlElement; to: Jid };
  'presence:full': { stanza: XmlElement; to: Jid };
  /**
   * An IQ from another entity arrives for a local account's bare or full JID, before the
   * server answers it on the account's behalf or delivers it to the session (blocking).
   */
  'iq:bare': { stanza: XmlElement; to: Jid };
  'iq:full': { stanza: XmlElement; to: Jid };
  /** A message for an existing account with no session that can take it (RFC 6121 §8.5.2.2). */
  'message:offline': { stanza: XmlElement; to: Jid };
  /** A message or presence addressed to the host itself. */
  'message:host': { stanza: XmlElement };
  'presence:host': { stanza: XmlElement };
  /**
   * An account was created, or is being removed (in-band registration, admin API): on
   * `user:removed` its data is still readable and is deleted once the handlers have run.
   */
  'user:created': { user: UserRef };
  'user:removed': { user: UserRef };
}

export type HookName = keyof HookEvents;
export type HookResult = boolean | void;
export type HookHandler<K extends HookName> = (event: HookEvents[K]) => HookResult | Promise<HookResult>;

/** An IQ addressed to the server or to an account, as given to an IQ handler. */
export interface IqRequest {
  stanza: XmlElement;
  /** The first child: the query element. */
  payload: XmlElement;
  from: Jid;
  /** Where the IQ was addressed: the host, or an account's bare JID. */
  to: Jid;
  /** The session that sent it, when it came from a local client. */
  session: Session | undefined;
}

/**
 * Answers an IQ: return the result payload (or nothing for an empty result), or throw a
 * StanzaError for an error reply.
 */
export type IqHandler = (request: IqRequest) => XmlElement | void | Promise<XmlElement | void>;

export interface IqRoute {
  xmlns: string;
  /** Local name of the payload element. */
  element: string;
  type: 'get' | 'set';
  /**
   * 'host': IQs to the server. 'account': IQs to any local account's bare JID, answered by
   * the server on its behalf (vCard of a contact, say). 'self': only a user's own bare JID or
   * no `to` at all (roster, blocking).
   */
  target: 'host' | 'account' | 'self';
}

export interface DiscoIdentity {
  category: string;
  type: string;
  name?: string;
}

/** Services modules publish for one another (a small exported API instead of shared tables). */
export interface ModuleServices {
  roster: RosterService;
  blocking: BlockingService;
}

export interface RosterService {
  /** The account's roster item for `contact`, if any. */
  getItem(owner: UserRef, contact: string): Promise<import('../storage/types.ts').RosterItem | undefined>;
  /** Bare JIDs that receive the account's presence (subscription from or both). */
  presenceSubscribers(owner: UserRef): Promise<string[]>;
  /** Bare JIDs the account receives presence from (subscription to or both). */
  presenceSubscriptions(owner: UserRef): Promise<string[]>;
}

export interface BlockingService {
  /** True when `owner` has blocked `jid` (bare or full; domain blocks included). */
  isBlocked(owner: UserRef, jid: Jid): Promise<boolean>;
}

export interface ModuleContext<C> {
  readonly host: string;
  readonly config: C;
  readonly log: Logger;
  readonly storage: Storage;
  /** Create, re-password and remove accounts (fires `user:created` / `user:removed`). */
  readonly accounts: Accounts;
  /** Server identity, for XEP-0092 and the like. */
  readonly server: { name: string; version: string; startedAt: Date };

  hook<K extends HookName>(name: K, handler: HookHandler<K>, priority?: number): void;
  /** Fire a hook on this host; resolves true when a handler handled it. */
  fire<K extends HookName>(name: K, event: HookEvents[K]): Promise<boolean>;
  handleIq(route: IqRoute, handler: IqHandler): void;

  /** Route a stanza whose `from` and `to` are set: to a local session, an account, or an error. */
  route(stanza: XmlElement): void;
  /** Bound sessions of an account on this server. */
  sessionsOf(user: UserRef): Session[];
  /** The bound session with this full JID, if any. */
  sessionByJid(jid: Jid): Session | undefined;

  /** Add a disco#info feature to the host ('host') or to every account ('account'). */
  addFeature(xmlns: string, target?: 'host' | 'account'): void;
  addIdentity(identity: DiscoIdentity, target?: 'host' | 'account'): void;
  /** Features and identities registered so far, for the disco module to answer with. */
  discoInfo(target: 'host' | 'account'): { features: string[]; identities: DiscoIdentity[] };

  /**
   * A stream feature offered to authenticated (or, with `beforeAuth`, unauthenticated)
   * clients; a function is evaluated when features are sent, so it can depend on what other
   * modules registered (caps hash) and may return undefined to offer nothing.
   */
  addStreamFeature(feature: XmlElement | (() => XmlElement | undefined), options?: { beforeAuth?: boolean }): void;
  /**
   * Handle a top-level element on an unauthenticated stream (in-band registration needs
   * this). Returning true means it was handled.
   */
  handlePreAuthIq(xmlns: string, handler: (stanza: XmlElement, stream: PreAuthStream) => Promise<boolean>): void;
  /**
   * Handle a top-level element that is not a stanza (a "nonza", e.g. XEP-0352's
   * <active/>) on a bound session, by its namespace.
   */
  handleNonza(xmlns: string, handler: (element: XmlElement, session: Session) => void): void;

  provide<K extends keyof ModuleServices>(name: K, service: ModuleServices[K]): void;
  /** A service another module provides on this host, or undefined when that module is off. */
  use<K extends keyof ModuleServices>(name: K): ModuleServices[K] | undefined;

  /** Run when the server stops. */
  onStop(fn: () => void | Promise<void>): void;
}

/** What a pre-authentication IQ handler can do with the stream. */
export interface PreAuthStream {
  /** Remote address, for per-address rate limits. */
  readonly remoteAddress: string;
  readonly secure: boolean;
  send(stanza: XmlElement): void;
}

export interface ModuleDefinition<S extends z.ZodType = z.ZodType> {
  name: string;
  /** Loaded on every host unless its config says `enabled = false` (default true). */
  enabledByDefault?: boolean;
  /** Config schema with defaults; `[modules.<name>]` is validated against it at start-up. */
  config: S;
  setup(ctx: ModuleContext<z.output<S>>): void | Promise<void>;
}

export function defineModule<S extends z.ZodType>(definition: ModuleDefinition<S>): ModuleDefinition<S> {
  return definition;
}
