/**
 * XEP-0359 unique and stable stanza ids: the ids the archive assigns, and removing the ones a
 * sender forged in our name (§4 rule 2: an entity that assigns ids deletes any <stanza-id/>
 * whose 'by' it would set itself, even when it adds none). <origin-id/> is the client's and
 * is always kept.
 *
 * An id is 21 characters of lower-case Crockford base32, whose characters sort in ASCII (and
 * in any collation) as their values do, so string order is time order:
 *   10  milliseconds since the epoch (good until the year 36812)
 *    3  sequence within that millisecond (32768 ids; the 32769th borrows the next millisecond)
 *    8  random (40 bits): unpredictable (§4 rule 1), and unique across cluster nodes
 * The sequence restarts every millisecond, so an id tells nothing about how many messages an
 * archive or the server holds (§7), only when the message arrived, which the archive's
 * <delay/> says anyway. The clock never runs backwards here: ids of one process are strictly
 * increasing even if the system clock is set back.
 */
import { randomInt } from 'node:crypto';
import { el, type XmlElement } from '../../xml/element.ts';
import { tryParseJid } from '../../router/jid.ts';

export const NS_SID = 'urn:xmpp:sid:0';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const TIME_DIGITS = 10;
const SEQ_DIGITS = 3;
const SEQ_LIMIT = 32 ** SEQ_DIGITS;
const RANDOM_DIGITS = 8;
const RANDOM_LIMIT = 32 ** RANDOM_DIGITS;

function base32(value: number, width: number): string {
  let out = '';
  for (let i = 0; i < width; i++) {
    out = ALPHABET[value % 32] + out;
    value = Math.floor(value / 32);
  }
  return out;
}

export interface AssignedId {
  id: string;
  /** Milliseconds since the epoch encoded in the id: the message's archive timestamp. */
  timestamp: number;
}

export class StanzaIdGenerator {
  private lastMs = 0;
  private seq = 0;

  next(now = Date.now()): AssignedId {
    if (now > this.lastMs) {
      this.lastMs = now;
      this.seq = 0;
    } else if (++this.seq >= SEQ_LIMIT) {
      this.lastMs += 1;
      this.seq = 0;
    }
    const id = base32(this.lastMs, TIME_DIGITS) + base32(this.seq, SEQ_DIGITS) + base32(randomInt(RANDOM_LIMIT), RANDOM_DIGITS);
    return { id, timestamp: this.lastMs };
  }
}

/** One generator per process, so that every archive's ids keep increasing whichever host assigns them. */
export const stanzaIds = new StanzaIdGenerator();

/**
 * Removes, in place, every <stanza-id/> whose 'by' is an address of `domain` (an account of
 * it, or the domain itself): ids only this server may assign for its archives.
 */
export function stripOwnStanzaIds(stanza: XmlElement, domain: string): void {
  let found = false;
  for (const child of stanza.children) {
    if (typeof child !== 'string' && isOurs(child, domain)) {
      found = true;
      break;
    }
  }
  if (found) stanza.removeChildren((child) => isOurs(child, domain));
}

function isOurs(child: XmlElement, domain: string): boolean {
  return child.name === 'stanza-id' && child.attrs.xmlns === NS_SID && tryParseJid(child.attrs.by)?.domain === domain;
}

export function stanzaIdElement(id: string, by: string): XmlElement {
  return el('stanza-id', { xmlns: NS_SID, by, id });
}
