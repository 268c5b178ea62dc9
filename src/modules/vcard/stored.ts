/** Stored vCards are the XML text of the element as set; this reads one back. */
import { StreamParser } from '../../xml/parser.ts';
import type { XmlElement } from '../../xml/element.ts';

const OPEN = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";
const CLOSE = '</stream:stream>';

/** The element written by XmlElement.toString(), or undefined if the text is not exactly one element. */
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
