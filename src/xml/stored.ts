/**
 * Elements kept in storage as the text XmlElement.toString() wrote (a pending subscription
 * request, a vCard, an offline or archived message) are read back through the same strict
 * tokenizer as the wire, so stored data gets no laxer treatment than live input.
 *
 * One parser, inside one open stream, reads every stored element in turn: a page of archived
 * messages then costs no parser set-up and no stream header per message (about half the
 * time). Parsing is synchronous, so the parser is never in use twice at once; after anything
 * but exactly one complete element it starts a new stream, so no text can leak into the next.
 */
import { StreamParser } from './parser.ts';
import type { XmlElement } from './element.ts';

const OPEN = Buffer.from("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>");

class StoredReader {
  private found: XmlElement | undefined;
  private elements = 0;
  private failed = false;
  private readonly parser = new StreamParser(
    {
      streamStart: () => undefined,
      stanza: (element) => {
        this.elements++;
        this.found = element;
      },
      streamEnd: () => undefined,
      error: () => {
        this.failed = true;
      },
    },
    // Stored text was within the server's limits when it was accepted; this only bounds the counting.
    { maxStanzaBytes: 2 ** 30, maxDepth: 64 },
  );

  constructor() {
    this.open();
  }

  read(xml: string): XmlElement | undefined {
    this.found = undefined;
    this.elements = 0;
    this.failed = false;
    this.parser.write(Buffer.from(xml, 'utf8'));
    const whole = !this.failed && this.elements === 1 && this.parser.betweenStanzas;
    if (!whole) this.open();
    return whole ? this.found : undefined;
  }

  private open(): void {
    this.parser.reset();
    this.parser.write(OPEN);
  }
}

let reader: StoredReader | undefined;

/** The element the text holds, or undefined if it is not exactly one well-formed element. */
export function parseStoredElement(xml: string): XmlElement | undefined {
  reader ??= new StoredReader();
  return reader.read(xml);
}
