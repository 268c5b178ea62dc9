/**
 * A pending subscription request is kept as the XML of the stanza that carried it, so its
 * extended content (a nick, a status message) reaches the user as sent (RFC 6121 §3.1.3).
 */
import { StreamParser } from '../../xml/parser.ts';
import type { XmlElement } from '../../xml/element.ts';

const OPEN = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";

/** Parses XML written by XmlElement.toString(); undefined if it is not one element. */
export function parseStoredStanza(xml: string): XmlElement | undefined {
  let found: XmlElement | undefined;
  let failed = false;
  const parser = new StreamParser(
    {
      streamStart: () => undefined,
      stanza: (element) => {
        if (found === undefined) found = element;
        else failed = true;
      },
      streamEnd: () => undefined,
      error: () => {
        failed = true;
      },
    },
    { maxStanzaBytes: Math.max(1024, Buffer.byteLength(xml) + 64), maxDepth: 64 },
  );
  parser.write(Buffer.from(OPEN + xml + '</stream:stream>', 'utf8'));
  return failed ? undefined : found;
}
