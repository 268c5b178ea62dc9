/**
 * Elements kept in storage as the text XmlElement.toString() wrote (a pending subscription
 * request, a vCard, an offline message) are read back through the same strict tokenizer as
 * the wire, so stored data gets no laxer treatment than live input.
 */
import { StreamParser } from './parser.ts';
import type { XmlElement } from './element.ts';

const OPEN = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";
const CLOSE = '</stream:stream>';

/** The element the text holds, or undefined if it is not exactly one well-formed element. */
export function parseStoredElement(xml: string): XmlElement | undefined {
  let found: XmlElement | undefined;
  let failed = false;
  const parser = new StreamParser(
    {
      streamStart: () => undefined,
      stanza: (element) => {
        if (found !== undefined) failed = true;
        found = element;
      },
      streamEnd: () => undefined,
      error: () => {
        failed = true;
      },
    },
    { maxStanzaBytes: Buffer.byteLength(xml) + 1024, maxDepth: 64 },
  );
  parser.write(Buffer.from(OPEN + xml + CLOSE, 'utf8'));
  return failed ? undefined : found;
}
