/**
 * The server side of the RFC 6121 subscription state machine (§3 and Appendix A), as pure
 * functions: given the state of one roster item and a subscription stanza, the next state and
 * whether the stanza goes on (outbound: routed to the contact; inbound: delivered to the user).
 *
 * A state is the 'subscription' value plus the two pending flags. "To" and "Both" exclude a
 * pending-out request (the user already receives the contact's presence), "From" and "Both"
 * a pending-in one, so nine states exist: None, None+PendingOut, None+PendingIn,
 * None+PendingOut+In, To, To+PendingIn, From, From+PendingOut, Both.
 *
 * Pre-approvals (§3.4, optional) are not offered, nor advertised: an outbound 'subscribed' with nothing pending in
 * is not routed, as Appendix A.2.3 says for a server without pre-approval support.
 */
import type { Subscription } from '../../storage/types.ts';

export type SubscriptionType = 'subscribe' | 'subscribed' | 'unsubscribe' | 'unsubscribed';

export const SUBSCRIPTION_TYPES: ReadonlySet<string> = new Set<SubscriptionType>(['subscribe', 'subscribed', 'unsubscribe', 'unsubscribed']);

export function isSubscriptionType(type: string | undefined): type is SubscriptionType {
  return type !== undefined && SUBSCRIPTION_TYPES.has(type);
}

export interface SubscriptionState {
  subscription: Subscription;
  /** Pending out: the user asked for the contact's presence. */
  askOut: boolean;
  /** Pending in: the contact asked for the user's presence. */
  askIn: boolean;
}

export const NONE: SubscriptionState = { subscription: 'none', askOut: false, askIn: false };

export interface Transition {
  next: SubscriptionState;
  /** Outbound: route the stanza to the contact. Inbound: deliver it to the user. */
  forward: boolean;
  /**
   * Inbound 'subscribe' while the contact already receives the user's presence: the server
   * answers 'subscribed' on the user's behalf instead of delivering it (§3.1.3).
   */
  autoReply: boolean;
}

/** Does the user receive the contact's presence? */
export function hasTo(s: Subscription): boolean {
  return s === 'to' || s === 'both';
}

/** Does the contact receive the user's presence? */
export function hasFrom(s: Subscription): boolean {
  return s === 'from' || s === 'both';
}

function combine(to: boolean, from: boolean): Subscription {
  if (to) return from ? 'both' : 'to';
  return from ? 'from' : 'none';
}

/** Keeps the invariants: no pending-out with 'to', no pending-in with 'from'. */
function state(to: boolean, from: boolean, askOut: boolean, askIn: boolean): SubscriptionState {
  return { subscription: combine(to, from), askOut: askOut && !to, askIn: askIn && !from };
}

export function sameState(a: SubscriptionState, b: SubscriptionState): boolean {
  return a.subscription === b.subscription && a.askOut === b.askOut && a.askIn === b.askIn;
}

const result = (next: SubscriptionState, forward: boolean, autoReply = false): Transition => ({ next, forward, autoReply });

/** The user's client sent a subscription stanza to the contact (Appendix A.2). */
export function outbound(type: SubscriptionType, current: SubscriptionState): Transition {
  const to = hasTo(current.subscription);
  const from = hasFrom(current.subscription);
  const { askOut, askIn } = current;
  switch (type) {
    // A.2.1: always routed; None and From gain a pending-out request.
    case 'subscribe':
      return result(state(to, from, true, askIn), true);
    // A.2.2: always routed; ends 'to' and any pending-out request.
    case 'unsubscribe':
      return result(state(false, from, false, askIn), true);
    // A.2.3: only approves a pending-in request; otherwise neither routed nor a change.
    case 'subscribed':
      return askIn ? result(state(to, true, askOut, false), true) : result(current, false);
    // A.2.4: denies a pending-in request or cancels 'from'; otherwise neither routed nor a change.
    case 'unsubscribed':
      if (askIn) return result(state(to, from, askOut, false), true);
      if (from) return result(state(to, false, askOut, false), true);
      return result(current, false);
  }
}

/** A subscription stanza from the contact arrived for the user (Appendix A.3). */
export function inbound(type: SubscriptionType, current: SubscriptionState): Transition {
  const to = hasTo(current.subscription);
  const from = hasFrom(current.subscription);
  const { askOut, askIn } = current;
  switch (type) {
    // A.3.1: auto-approved when already 'from'; a repeated request is not delivered again.
    case 'subscribe':
      if (from) return result(current, false, true);
      if (askIn) return result(current, false);
      return result(state(to, from, askOut, true), true);
    // A.3.2: withdraws a pending-in request or ends 'from'.
    case 'unsubscribe':
      if (askIn) return result(state(to, from, askOut, false), true);
      if (from) return result(state(to, false, askOut, askIn), true);
      return result(current, false);
    // A.3.3: only answers our pending-out request.
    case 'subscribed':
      return askOut ? result(state(true, from, false, askIn), true) : result(current, false);
    // A.3.4: refuses our pending-out request or ends 'to'.
    case 'unsubscribed':
      if (askOut) return result(state(to, from, false, askIn), true);
      if (to) return result(state(false, from, false, askIn), true);
      return result(current, false);
  }
}

/** The Appendix A name of a state, for logs and tests. */
export function stateName(s: SubscriptionState): string {
  const base = s.subscription === 'none' ? 'None' : s.subscription === 'to' ? 'To' : s.subscription === 'from' ? 'From' : 'Both';
  if (s.askOut && s.askIn) return `${base} + Pending Out/In`;
  if (s.askOut) return `${base} + Pending Out`;
  if (s.askIn) return `${base} + Pending In`;
  return base;
}
