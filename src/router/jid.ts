/**
 * JIDs (RFC 7622). Parsing normalises every part, so two JIDs are the same address exactly
 * when their strings are equal:
 * - localpart: PRECIS UsernameCaseMapped plus the forbidden characters `" & ' / : < > @`;
 * - domainpart: one trailing dot removed, IDNA (UTS #46 processing through WHATWG URL's
 *   domainToASCII) then back to Unicode, lower case, only letter-digit-hyphen labels;
 *   IPv4 literals as dotted quads and IPv6 literals in brackets (canonical form);
 * - resourcepart: PRECIS OpaqueString.
 * Each part is 1 to 1023 bytes. Pure-ASCII parts take fast paths that need no Unicode work,
 * and recently parsed strings are cached (Jid objects are immutable).
 */
import { domainToASCII, domainToUnicode } from 'node:url';
import { isIPv6 } from 'node:net';
import { PrecisError, prepareLocalpart, prepareResource, MAX_PART_BYTES } from '../auth/precis.ts';

export class JidError extends Error {
  override name = 'JidError';
}

export class Jid {
  readonly local: string;
  readonly domain: string;
  readonly resource: string;
  /** `local@domain` (or `domain`), normalised. */
  readonly bare: string;
  /** The whole JID, normalised. */
  readonly full: string;

  /** Builds from parts that are already normalised (no checks); use parseJid for input. */
  constructor(local: string, domain: string, resource = '') {
    this.local = local;
    this.domain = domain;
    this.resource = resource;
    this.bare = local ? `${local}@${domain}` : domain;
    this.full = resource ? `${this.bare}/${resource}` : this.bare;
  }

  get isBare(): boolean {
    return this.resource === '';
  }

  toBare(): Jid {
    return this.resource === '' ? this : new Jid(this.local, this.domain);
  }

  /** The same bare JID with a resource, prepared as a resourcepart (JidError if invalid); '' gives the bare JID. */
  withResource(resource: string): Jid {
    if (resource === '') return this.toBare();
    return new Jid(this.local, this.domain, part(() => prepareResource(resource)));
  }

  toString(): string {
    return this.full;
  }
}

function part(prepare: () => string): string {
  try {
    return prepare();
  } catch (err) {
    if (err instanceof PrecisError) throw new JidError(`invalid ${err.message}`);
    throw err;
  }
}

// ---- domainpart ----

const RE_ASCII_HOST = /^[A-Za-z0-9.-]+$/;
const RE_LDH_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const RE_DECIMAL_OCTET = /^(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$/;
/** WHATWG URL treats a host whose last label is a number as IPv4; so do we, strictly. */
const RE_NUMERIC_LABEL = /^(?:[0-9]+|0x[0-9a-f]*)$/;

function checkLabels(ascii: string): void {
  for (const label of ascii.split('.')) {
    if (!RE_LDH_LABEL.test(label)) throw new JidError(`invalid domainpart label: ${JSON.stringify(label)}`);
    // IDNA2008: hyphens in positions 3 and 4 only in A-labels (checked by domainToASCII).
    if (label.length >= 4 && label[2] === '-' && label[3] === '-' && !label.startsWith('xn--')) {
      throw new JidError(`invalid domainpart label: ${JSON.stringify(label)}`);
    }
  }
}

/** Returns the IPv4 literal, undefined when the host is not number-like, throws when it is malformed. */
function ipv4Literal(host: string): string | undefined {
  const lastDot = host.lastIndexOf('.');
  if (!RE_NUMERIC_LABEL.test(host.slice(lastDot + 1))) return undefined;
  const octets = host.split('.');
  if (octets.length !== 4 || !octets.every((o) => RE_DECIMAL_OCTET.test(o))) {
    throw new JidError(`invalid IPv4 domainpart: ${host}`);
  }
  return host;
}

function ipv6Literal(input: string): string {
  const inner = input.slice(1, -1);
  if (!input.endsWith(']') || inner.includes('%') || !isIPv6(inner)) {
    throw new JidError(`invalid IPv6 domainpart: ${input}`);
  }
  return new URL(`http://[${inner}]/`).hostname; // canonical form, with the brackets
}

function checkLength(domain: string): string {
  if (domain.length > MAX_PART_BYTES && Buffer.byteLength(domain, 'utf8') > MAX_PART_BYTES) {
    throw new JidError(`domainpart longer than ${MAX_PART_BYTES} bytes`);
  }
  return domain;
}

/** Normalise a domainpart (RFC 7622 §3.2); throws JidError. */
export function prepareDomainpart(input: string): string {
  if (input.startsWith('[')) return ipv6Literal(input);
  if (input.length > MAX_PART_BYTES + 1) throw new JidError(`domainpart longer than ${MAX_PART_BYTES} bytes`);
  // Fast path: plain ASCII letter-digit-hyphen names with no A-labels.
  if (RE_ASCII_HOST.test(input)) {
    let d = input.toLowerCase();
    if (!d.includes('xn--')) {
      if (d.endsWith('.')) d = d.slice(0, -1);
      if (d === '') throw new JidError('empty domainpart');
      const ip = ipv4Literal(d);
      if (ip !== undefined) return ip;
      checkLabels(d);
      return d;
    }
  }
  // Slow path: UTS #46 mapping and IDNA validation, then the Unicode form.
  let d = input.replace(/[\u3002\uff0e\uff61]/g, '.');
  if (d.endsWith('.')) d = d.slice(0, -1);
  if (d === '') throw new JidError('empty domainpart');
  const ip = ipv4Literal(d.normalize('NFKC').toLowerCase());
  if (ip !== undefined) return ip;
  const ascii = domainToASCII(d);
  if (ascii === '') throw new JidError(`invalid domainpart: ${input}`);
  checkLabels(ascii);
  const unicode = domainToUnicode(ascii);
  if (unicode === '') throw new JidError(`invalid domainpart: ${input}`);
  return checkLength(unicode);
}

// ---- parsing ----

/** Two generations of recently parsed inputs: O(1) lookups and no per-entry eviction. */
const CACHE_GENERATION = 2048;
/** Longer inputs are not cached, which bounds the cache's memory. */
const CACHE_MAX_INPUT = 256;
let recent = new Map<string, Jid>();
let older = new Map<string, Jid>();

function remember(input: string, jid: Jid): Jid {
  if (input.length > CACHE_MAX_INPUT) return jid;
  if (recent.size >= CACHE_GENERATION) {
    older = recent;
    recent = new Map();
  }
  recent.set(input, jid);
  return jid;
}

/** Parse and normalise; throws JidError for anything RFC 7622 does not allow. */
export function parseJid(input: string): Jid {
  const hit = recent.get(input);
  if (hit !== undefined) return hit;
  const old = older.get(input);
  if (old !== undefined) return remember(input, old);
  if (typeof input !== 'string') throw new JidError('JID must be a string');
  // Three parts of at most 1023 bytes, each UTF-16 code unit at least one byte.
  if (input.length > 3 * MAX_PART_BYTES + 2) throw new JidError('JID too long');
  // RFC 7622 §3.1: the first '/' starts the resourcepart; before it, the first '@' ends the localpart.
  const slash = input.indexOf('/');
  const beforeResource = slash === -1 ? input : input.slice(0, slash);
  const at = beforeResource.indexOf('@');
  const rawLocal = at === -1 ? '' : beforeResource.slice(0, at);
  const rawDomain = at === -1 ? beforeResource : beforeResource.slice(at + 1);
  if (at !== -1 && rawLocal === '') throw new JidError(`empty localpart: ${input}`);
  if (rawDomain === '') throw new JidError(`empty domainpart: ${input}`);
  if (slash !== -1 && slash === input.length - 1) throw new JidError(`empty resourcepart: ${input}`);
  const local = rawLocal === '' ? '' : part(() => prepareLocalpart(rawLocal));
  const domain = prepareDomainpart(rawDomain);
  const resource = slash === -1 ? '' : part(() => prepareResource(input.slice(slash + 1)));
  return remember(input, new Jid(local, domain, resource));
}

/** Like parseJid but returns undefined instead of throwing. */
export function tryParseJid(input: string | undefined): Jid | undefined {
  if (input === undefined) return undefined;
  try {
    return parseJid(input);
  } catch {
    return undefined;
  }
}
