// Type declarations for the untyped third-party packages the test support code uses
// (only the parts it touches). Kept here so that src/ never depends on them.

declare module 'ltx' {
  export class Element {
    constructor(name: string, attrs?: Record<string, string | number | undefined>);
    name: string;
    attrs: Record<string, string>;
    children: Array<Element | string>;
    parent: Element | null;
    is(name: string, xmlns?: string): boolean;
    /** Local name, without a prefix. */
    getName(): string;
    /** Namespace, resolved through the parents. */
    getNS(): string | undefined;
    getAttr(name: string): string | undefined;
    getChild(name: string, xmlns?: string): Element | undefined;
    getChildren(name: string, xmlns?: string): Element[];
    getChildElements(): Element[];
    /** The concatenated direct text children. */
    getText(): string;
    getChildText(name: string, xmlns?: string): string | null;
    cnode(child: Element): Element;
    t(text: string): Element;
    toString(): string;
  }
  export function parse(xml: string): Element;
  export function escapeXML(text: string): string;
  export function escapeXMLText(text: string): string;
}

declare module 'ltx/src/parsers/ltx.js' {
  import { EventEmitter } from 'node:events';
  /** ltx's own SAX tokenizer: lenient, streaming, string input. */
  export default class SaxLtx extends EventEmitter {
    write(data: string): void;
    end(data?: string): void;
    on(event: 'startElement', listener: (name: string, attrs: Record<string, string>) => void): this;
    on(event: 'endElement', listener: (name: string, selfClosing: boolean) => void): this;
    on(event: 'text', listener: (text: string) => void): this;
    on(event: 'error', listener: (err: Error) => void): this;
  }
}

declare module '@xmpp/client' {
  import type { Element } from 'ltx';
  import { EventEmitter } from 'node:events';

  export interface XmppJid {
    local: string;
    domain: string;
    resource: string;
    toString(): string;
    bare(): XmppJid;
  }

  export type Authenticate = (credentials: { username: string; password: string }, mechanism: string) => Promise<void>;

  export interface XmppClientOptions {
    service: string;
    domain: string;
    resource?: string;
    username?: string;
    password?: string;
    /** Either fixed credentials or a callback that picks the mechanism and calls authenticate. */
    credentials?: (authenticate: Authenticate, mechanisms: string[]) => Promise<void>;
    timeout?: number;
  }

  export interface XmppClient extends EventEmitter {
    jid: XmppJid | null;
    status: string;
    options: XmppClientOptions;
    reconnect: { stop(): void };
    iqCaller: { request(stanza: Element, timeout?: number): Promise<Element> };
    /** Overridable per instance: the socket options for a service URI. */
    socketParameters(service: string): Record<string, unknown> | undefined;
    start(): Promise<XmppJid>;
    stop(): Promise<void>;
    send(stanza: Element): Promise<void>;
    isSecure(): boolean;
  }

  export function client(options: XmppClientOptions): XmppClient;
  export function xml(name: string, attrs?: Record<string, string | undefined> | null, ...children: Array<Element | string>): Element;
}
