/**
 * Roster items on the wire (RFC 6121 §2.1): rendering, roster-set validation (§2.3.3), and
 * which stored rows the user sees.
 */
import { el, type XmlElement } from '../../xml/element.ts';
import { StanzaError } from '../../xml/errors.ts';
import { JidError, parseJid, type Jid } from '../../router/jid.ts';
import type { RosterItem } from '../../storage/types.ts';

export const NS_ROSTER = 'jabber:iq:roster';

/**
 * A row that exists only because the contact asked to subscribe (None + Pending In, and
 * nothing the user gave it) is not part of the user's roster yet: it is not returned nor
 * pushed until the user answers or edits it (RFC 6121 §3.1.3 creates no roster item; the
 * request is stored with the row). Storage has no flag for "created by the user", so an
 * item the user added with neither name nor group is hidden too while such a request waits.
 */
export function isVisible(item: RosterItem): boolean {
  return !(item.subscription === 'none' && item.askIn && !item.askOut && item.name === undefined && item.groups.length === 0);
}

/** The <item/> of a roster result or push. */
export function itemElement(item: RosterItem): XmlElement {
  return el(
    'item',
    { jid: item.jid, name: item.name, subscription: item.subscription, ask: item.askOut ? 'subscribe' : undefined },
    ...item.groups.map((group) => el('group', {}, group)),
  );
}

/** A removal push (§2.5.2). */
export function removedElement(jid: string): XmlElement {
  return el('item', { jid, subscription: 'remove' });
}

export function queryElement(ver: string | undefined, ...items: XmlElement[]): XmlElement {
  return el('query', { xmlns: NS_ROSTER, ver }, ...items);
}

export interface RosterSetLimits {
  maxNameLength: number;
  maxGroupLength: number;
  maxGroups: number;
}

export type RosterSet =
  | { kind: 'update'; jid: Jid; name: string | undefined; groups: string[] }
  | { kind: 'remove'; jid: Jid };

/** Length in characters (code points), as users see them. */
function length(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

/**
 * Checks a roster set (§2.1.5, §2.3.3): one item, a valid JID, groups unique and non-empty,
 * lengths within the configured limits. The 'subscription' attribute counts only as
 * 'remove'; every other value is ignored, as are 'ask' and 'approved' (the client cannot set
 * subscription states through the roster).
 */
export function parseRosterSet(query: XmlElement, owner: Jid, limits: RosterSetLimits): RosterSet {
  const items = query.getChildren('item');
  if (items.length !== 1) throw new StanzaError('bad-request', 'a roster set carries exactly one item');
  const item = items[0];
  const rawJid = item.attrs.jid;
  if (rawJid === undefined || rawJid === '') throw new StanzaError('bad-request', 'the item needs a jid attribute');
  let jid: Jid;
  try {
    jid = parseJid(rawJid);
  } catch (err) {
    if (err instanceof JidError) throw new StanzaError('jid-malformed', `not a valid JID: ${rawJid}`);
    throw err;
  }
  // RFC 6121 says nothing of the user's own JID; the account is implicitly subscribed to
  // itself both ways, so an item for it could only contradict that.
  if (jid.bare === owner.bare) throw new StanzaError('not-allowed', 'your own JID cannot be a roster item');
  if (item.attrs.subscription === 'remove') return { kind: 'remove', jid };

  const name = item.attrs.name;
  if (name !== undefined && length(name) > limits.maxNameLength) {
    throw new StanzaError('not-acceptable', `the name is longer than ${limits.maxNameLength} characters`);
  }
  const groups: string[] = [];
  const seen = new Set<string>();
  for (const group of item.getChildren('group')) {
    const text = group.text();
    if (text === '') throw new StanzaError('not-acceptable', 'a group name cannot be empty');
    if (length(text) > limits.maxGroupLength) throw new StanzaError('not-acceptable', `a group name is longer than ${limits.maxGroupLength} characters`);
    if (seen.has(text)) throw new StanzaError('bad-request', `the group '${text}' is given twice`);
    seen.add(text);
    groups.push(text);
  }
  if (groups.length > limits.maxGroups) throw new StanzaError('not-acceptable', `an item belongs to at most ${limits.maxGroups} groups`);
  // An empty name is the same as no name (§2.1.2.4 lets the client remove the handle either way).
  return { kind: 'update', jid, name: name === '' ? undefined : name, groups };
}
