/**
 * Archiving preferences (XEP-0441, the <prefs/> of urn:xmpp:mam:2): a default (always, never,
 * roster) and lists of JIDs always or never archived. JID matching (§2.4): a listed bare JID
 * matches every resource of it, a listed full JID only itself; the peer is the message's `to`
 * for what the user sends and its `from` for what the user receives. A JID on both lists is
 * never archived (privacy wins). 'roster' archives a peer whose bare JID is in the user's
 * roster (an item the user can see, not only a pending request from the peer); without the
 * roster module nobody is.
 */
import type { RosterService } from '../api.ts';
import { el, type XmlElement } from '../../xml/element.ts';
import { StanzaError } from '../../xml/errors.ts';
import { tryParseJid, type Jid } from '../../router/jid.ts';
import type { ArchiveDefault, ArchivePrefs, RosterItem, UserRef } from '../../storage/types.ts';

export const NS_MAM = 'urn:xmpp:mam:2';
const DEFAULTS = new Set<string>(['always', 'never', 'roster']);
/** Most JIDs on the two lists together. */
const MAX_LISTED = 1000;

export function prefsElement(prefs: ArchivePrefs): XmlElement {
  const list = (name: string, jids: string[]) => el(name, {}, ...jids.map((jid) => el('jid', {}, jid)));
  return el('prefs', { xmlns: NS_MAM, default: prefs.default }, list('always', prefs.always), list('never', prefs.never));
}

/** The preferences a <prefs/> set asks for (a missing default keeps `current`'s), or bad-request. */
export function parsePrefs(payload: XmlElement, current: ArchivePrefs): ArchivePrefs {
  const mode = payload.attrs.default ?? current.default;
  if (!DEFAULTS.has(mode)) throw new StanzaError('bad-request', `default must be always, never or roster, not '${mode}'`);
  const list = (name: string): string[] => {
    const jids = new Set<string>();
    for (const container of payload.getChildren(name)) {
      for (const child of container.getChildren()) {
        if (child.name !== 'jid') throw new StanzaError('bad-request', `unexpected <${child.name}/> in <${name}/>`);
        const jid = tryParseJid(child.text().trim());
        if (jid === undefined) throw new StanzaError('bad-request', `not a JID in <${name}/>: '${child.text()}'`);
        jids.add(jid.full);
      }
    }
    return [...jids].sort();
  };
  const prefs = { default: mode as ArchiveDefault, always: list('always'), never: list('never') };
  if (prefs.always.length + prefs.never.length > MAX_LISTED) {
    throw new StanzaError('policy-violation', `at most ${MAX_LISTED} JIDs may be listed`);
  }
  return prefs;
}

function listed(jids: string[], peer: Jid): boolean {
  for (const jid of jids) {
    if (jid === peer.full || jid === peer.bare) return true;
  }
  return false;
}

/** Whether a message exchanged with `peer` goes into `owner`'s archive. */
export function wanted(prefs: ArchivePrefs, owner: UserRef, peer: Jid, roster: RosterService | undefined): boolean | Promise<boolean> {
  if (listed(prefs.never, peer)) return false;
  if (listed(prefs.always, peer)) return true;
  if (prefs.default === 'always') return true;
  if (prefs.default === 'never' || roster === undefined) return false;
  return roster.getItem(owner, peer.bare).then(visible);
}

/** Mirrors what the roster shows: a row that only records a pending request from the peer is not an item. */
function visible(item: RosterItem | undefined): boolean {
  if (item === undefined) return false;
  return !(item.subscription === 'none' && item.askIn && !item.askOut && item.name === undefined && item.groups.length === 0);
}

/**
 * Preferences read on every archived message, kept for a while: bounded (oldest out first),
 * and each entry trusted for `ttlMs`, so a change made through another cluster node applies
 * here within that time (a change made here applies at once).
 */
export class PrefsCache {
  private readonly entries = new Map<string, { prefs: ArchivePrefs; at: number }>();

  constructor(private readonly maxEntries: number, private readonly ttlMs: number) {}

  get(key: string): ArchivePrefs | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (performance.now() - entry.at > this.ttlMs) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.prefs;
  }

  set(key: string, prefs: ArchivePrefs): void {
    this.entries.delete(key);
    this.entries.set(key, { prefs, at: performance.now() });
    if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
  }

  delete(key: string): void {
    this.entries.delete(key);
  }
}
