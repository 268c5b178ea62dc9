/**
 * Incoming XMPP stream for the scripted client, tokenised by ltx (a third-party parser, so
 * that the tests do not share the server's). Reports the stream header, each complete
 * top-level element, and the stream's end tag. One reader per stream: restart = new reader.
 */
import { StringDecoder } from 'node:string_decoder';
import { Element } from 'ltx';
import SaxLtx from 'ltx/src/parsers/ltx.js';

export interface StreamReaderEvents {
  header(name: string, attrs: Record<string, string>): void;
  element(element: Element): void;
  end(): void;
  error(err: Error): void;
}

export class StreamReader {
  private readonly decoder = new StringDecoder('utf8');
  private readonly parser = new SaxLtx();
  private readonly events: StreamReaderEvents;
  private depth = 0;
  /** Stands for <stream:stream> so that top-level elements resolve their namespaces through it. */
  private root: Element | undefined;
  private current: Element | undefined;

  constructor(events: StreamReaderEvents) {
    this.events = events;
    this.parser.on('startElement', (name, attrs) => this.onStart(name, attrs));
    this.parser.on('endElement', (name) => this.onEnd(name));
    this.parser.on('text', (text) => this.current?.t(text));
    this.parser.on('error', (err) => this.events.error(err));
  }

  write(chunk: Buffer): void {
    this.parser.write(this.decoder.write(chunk));
  }

  private onStart(name: string, attrs: Record<string, string>): void {
    if (this.depth === 0) {
      this.root = new Element(name, attrs);
      this.depth = 1;
      this.events.header(name, attrs);
      return;
    }
    const element = new Element(name, attrs);
    if (this.current === undefined) {
      // Top level: linked to the stream root for namespace lookups, but not kept in it.
      element.parent = this.root ?? null;
      this.current = element;
    } else {
      this.current = this.current.cnode(element);
    }
    this.depth++;
  }

  private onEnd(name: string): void {
    if (this.depth === 1) {
      this.depth = 0;
      this.events.end();
      return;
    }
    if (this.current === undefined || this.depth === 0) return;
    if (name !== this.current.name) {
      this.events.error(new Error(`mismatched end tag </${name}> for <${this.current.name}>`));
    }
    this.depth--;
    if (this.depth === 1) {
      const done = this.current;
      this.current = undefined;
      this.events.element(done);
    } else {
      this.current = this.current.parent ?? undefined;
    }
  }
}
