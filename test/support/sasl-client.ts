/**
 * The client side of SASL PLAIN (RFC 4616) and SCRAM (RFC 5802, RFC 7677), with channel
 * binding (RFC 5929 tls-server-end-point and tls-unique, RFC 9266 tls-exporter). Written for
 * the tests independently of src/auth, so that a login through it really checks the server.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual, X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';

export type ScramMechanism =
  | 'SCRAM-SHA-1' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512'
  | 'SCRAM-SHA-1-PLUS' | 'SCRAM-SHA-256-PLUS' | 'SCRAM-SHA-512-PLUS';
export type SaslMechanism = ScramMechanism | 'PLAIN';
export type ChannelBindingType = 'tls-exporter' | 'tls-server-end-point' | 'tls-unique';

const DIGESTS = { 'SHA-1': ['sha1', 20], 'SHA-256': ['sha256', 32], 'SHA-512': ['sha512', 64] } as const;
type Hash = keyof typeof DIGESTS;

/** Lets a test corrupt any client message before it is sent (to check the server's checks). */
export interface ScramTamper {
  clientFirst?: (message: string) => string;
  clientFinal?: (message: string) => string;
}

export interface ScramOptions {
  mechanism: ScramMechanism;
  username: string;
  password: string;
  authzid?: string;
  /** For -PLUS mechanisms; default tls-exporter. */
  channelBinding?: ChannelBindingType;
  /** Required for -PLUS mechanisms. */
  tlsSocket?: TLSSocket;
  /** GS2 flag for non-PLUS mechanisms: 'n' (default) or 'y' (client could bind, server did not offer). */
  gs2Flag?: 'n' | 'y';
  nonce?: string;
  tamper?: ScramTamper;
}

/** `authzid NUL authcid NUL password` (RFC 4616 §2). */
export function plainMessage(username: string, password: string, authzid = ''): Buffer {
  return Buffer.from(`${authzid}\0${username}\0${preparePassword(password)}`, 'utf8');
}

/**
 * OpaqueString (RFC 8265 §4.2) as far as tests need it: non-ASCII spaces become U+0020, then
 * NFC. The server does the full profile; a test with exotic passwords checks that it agrees.
 */
export function preparePassword(password: string): string {
  return password.replace(/[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]/g, ' ').normalize('NFC');
}

/** saslname escaping of RFC 5802 §5.1. */
function saslName(name: string): string {
  return name.replace(/=/g, '=3D').replace(/,/g, '=2C');
}

function parseAttributes(message: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of message.split(',')) {
    const eq = part.indexOf('=');
    if (eq === 1) out.set(part[0], part.slice(2));
  }
  return out;
}

/** Channel-binding data from the client's view of the TLS connection. */
export function channelBindingData(socket: TLSSocket, type: ChannelBindingType): Buffer {
  if (type === 'tls-exporter') return socket.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0));
  if (type === 'tls-unique') {
    const finished = socket.getFinished();
    if (finished === undefined) throw new Error('tls-unique is not available on this connection');
    return finished;
  }
  const peer = socket.getPeerX509Certificate();
  if (peer === undefined) throw new Error('no server certificate');
  return createHash(endPointHash(peer)).update(peer.raw).digest();
}

/** RFC 5929 §4.1: the certificate's signature hash, with MD5 and SHA-1 upgraded to SHA-256. */
function endPointHash(cert: X509Certificate): string {
  const oid = signatureAlgorithmOid(cert.raw);
  const byOid: Record<string, string> = {
    '1.2.840.113549.1.1.12': 'sha384', '1.2.840.113549.1.1.13': 'sha512',
    '1.2.840.10045.4.3.3': 'sha384', '1.2.840.10045.4.3.4': 'sha512',
  };
  return byOid[oid] ?? 'sha256';
}

/** The OID of Certificate.signatureAlgorithm, read from the DER (node 20 does not expose it). */
function signatureAlgorithmOid(der: Buffer): string {
  let pos = 0;
  const header = (): { tag: number; length: number } => {
    const tag = der[pos++];
    let length = der[pos++];
    if (length & 0x80) {
      const bytes = length & 0x7f;
      length = 0;
      for (let i = 0; i < bytes; i++) length = length * 256 + der[pos++];
    }
    return { tag, length };
  };
  header(); // Certificate SEQUENCE
  const tbs = header(); // tbsCertificate SEQUENCE
  pos += tbs.length;
  header(); // signatureAlgorithm SEQUENCE
  const oid = header();
  if (oid.tag !== 0x06) throw new Error('unexpected certificate structure');
  const bytes = der.subarray(pos, pos + oid.length);
  const arcs = [Math.floor(bytes[0] / 40), bytes[0] % 40];
  let value = 0;
  for (const byte of bytes.subarray(1)) {
    value = value * 128 + (byte & 0x7f);
    if (!(byte & 0x80)) {
      arcs.push(value);
      value = 0;
    }
  }
  return arcs.join('.');
}

/** A SCRAM client conversation: first() → final(serverFirst) → verify(serverFinal). */
export class ScramClient {
  private readonly options: ScramOptions;
  private readonly hash: Hash;
  private readonly nonce: string;
  private readonly gs2Header: string;
  private readonly cbindInput: Buffer;
  private clientFirstBare = '';
  private serverSignature: Buffer | undefined;

  constructor(options: ScramOptions) {
    this.options = options;
    const match = /^SCRAM-(SHA-1|SHA-256|SHA-512)(-PLUS)?$/.exec(options.mechanism);
    if (match === null) throw new Error(`not a SCRAM mechanism: ${options.mechanism}`);
    this.hash = match[1] as Hash;
    this.nonce = options.nonce ?? randomBytes(18).toString('base64');
    const authz = options.authzid === undefined ? '' : `a=${saslName(options.authzid)}`;
    if (match[2] !== undefined) {
      const type = options.channelBinding ?? 'tls-exporter';
      if (options.tlsSocket === undefined) throw new Error(`${options.mechanism} needs a TLS connection`);
      this.gs2Header = `p=${type},${authz},`;
      this.cbindInput = Buffer.concat([Buffer.from(this.gs2Header), channelBindingData(options.tlsSocket, type)]);
    } else {
      this.gs2Header = `${options.gs2Flag ?? 'n'},${authz},`;
      this.cbindInput = Buffer.from(this.gs2Header);
    }
  }

  first(): string {
    this.clientFirstBare = `n=${saslName(this.options.username)},r=${this.nonce}`;
    const message = this.gs2Header + this.clientFirstBare;
    return this.options.tamper?.clientFirst?.(message) ?? message;
  }

  /** The client-final-message for the server-first-message; throws when the latter is bad. */
  final(serverFirst: string): string {
    const attrs = parseAttributes(serverFirst);
    const nonce = attrs.get('r');
    const salt = attrs.get('s');
    const iterations = Number(attrs.get('i'));
    if (attrs.has('m')) throw new Error('server-first-message has a mandatory extension');
    if (nonce === undefined || !nonce.startsWith(this.nonce) || nonce.length === this.nonce.length) {
      throw new Error(`server nonce does not extend the client nonce: ${serverFirst}`);
    }
    if (salt === undefined || !Number.isSafeInteger(iterations) || iterations < 1) {
      throw new Error(`malformed server-first-message: ${serverFirst}`);
    }
    const [digest, size] = DIGESTS[this.hash];
    const hmac = (key: Buffer, data: string) => createHmac(digest, key).update(data).digest();
    const salted = pbkdf2Sync(Buffer.from(preparePassword(this.options.password), 'utf8'), Buffer.from(salt, 'base64'), iterations, size, digest);
    const clientKey = hmac(salted, 'Client Key');
    const storedKey = createHash(digest).update(clientKey).digest();
    const withoutProof = `c=${this.cbindInput.toString('base64')},r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    const signature = hmac(storedKey, authMessage);
    const proof = Buffer.from(clientKey.map((byte, i) => byte ^ signature[i]));
    this.serverSignature = hmac(hmac(salted, 'Server Key'), authMessage);
    const message = `${withoutProof},p=${proof.toString('base64')}`;
    return this.options.tamper?.clientFinal?.(message) ?? message;
  }

  /** Checks the server-final-message; throws unless it proves the server knows the keys. */
  verify(serverFinal: string): void {
    const attrs = parseAttributes(serverFinal);
    const error = attrs.get('e');
    if (error !== undefined) throw new Error(`server-final-message carries e=${error}`);
    const verifier = Buffer.from(attrs.get('v') ?? '', 'base64');
    if (this.serverSignature === undefined) throw new Error('server-final-message before client-final-message');
    if (verifier.length !== this.serverSignature.length || !timingSafeEqual(verifier, this.serverSignature)) {
      throw new Error(`server signature does not verify: ${serverFinal}`);
    }
  }
}
