/**
 * Channel binding data of a TLS connection, for SCRAM -PLUS:
 * - tls-exporter (RFC 9266): 32 bytes exported with the label "EXPORTER-Channel-Binding"
 *   and no context. Only for TLS 1.3: for TLS 1.2, RFC 9266 requires the extended master
 *   secret extension, which Node does not let us check.
 * - tls-server-end-point (RFC 5929 §4.1): a hash of the server's own DER certificate with
 *   the hash of the certificate's signature algorithm, SHA-256 when that is MD5 or SHA-1.
 *   Node 20's X509Certificate does not expose the signature algorithm, so it is read from
 *   the DER (Certificate.signatureAlgorithm, RFC 5280 §4.1.1.2). Signature algorithms
 *   without a single hash (Ed25519, Ed448, unknown OIDs) give no tls-server-end-point.
 */
import { createHash } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { ChannelBinding } from './sasl.ts';

/** Node hash names by signature algorithm OID. */
const SIGNATURE_HASH: Record<string, string> = {
  '1.2.840.113549.1.1.4': 'sha256', // md5WithRSAEncryption → SHA-256
  '1.2.840.113549.1.1.5': 'sha256', // sha1WithRSAEncryption → SHA-256
  '1.2.840.113549.1.1.14': 'sha224',
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.10045.4.1': 'sha256', // ecdsa-with-SHA1 → SHA-256
  '1.2.840.10045.4.3.1': 'sha224',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.2.840.10040.4.3': 'sha256', // dsa-with-sha1 → SHA-256
  '2.16.840.1.101.3.4.3.1': 'sha224', // dsa-with-sha224
  '2.16.840.1.101.3.4.3.2': 'sha256', // dsa-with-sha256
  '2.16.840.1.101.3.4.3.9': 'sha3-224', // ecdsa-with-sha3-*
  '2.16.840.1.101.3.4.3.10': 'sha3-256',
  '2.16.840.1.101.3.4.3.11': 'sha3-384',
  '2.16.840.1.101.3.4.3.12': 'sha3-512',
  '2.16.840.1.101.3.4.3.13': 'sha3-224', // id-rsassa-pkcs1-v1_5-with-sha3-*
  '2.16.840.1.101.3.4.3.14': 'sha3-256',
  '2.16.840.1.101.3.4.3.15': 'sha3-384',
  '2.16.840.1.101.3.4.3.16': 'sha3-512',
};

const RSASSA_PSS = '1.2.840.113549.1.1.10';

/** Digest OIDs inside RSASSA-PSS parameters. */
const DIGEST_HASH: Record<string, string> = {
  '1.3.14.3.2.26': 'sha256', // SHA-1 → SHA-256
  '2.16.840.1.101.3.4.2.4': 'sha224',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
  '2.16.840.1.101.3.4.2.7': 'sha3-224',
  '2.16.840.1.101.3.4.2.8': 'sha3-256',
  '2.16.840.1.101.3.4.2.9': 'sha3-384',
  '2.16.840.1.101.3.4.2.10': 'sha3-512',
};

interface Tlv {
  tag: number;
  start: number; // first content byte
  end: number; // one past the last content byte
}

/** One DER tag-length-value at `offset`; throws on anything malformed. */
function readTlv(der: Buffer, offset: number, limit: number): Tlv {
  if (offset + 2 > limit) throw new Error('truncated DER');
  const tag = der[offset];
  let length = der[offset + 1];
  let p = offset + 2;
  if (length & 0x80) {
    const n = length & 0x7f;
    if (n === 0 || n > 4 || p + n > limit) throw new Error('bad DER length');
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + der[p++];
  }
  if (p + length > limit) throw new Error('truncated DER');
  return { tag, start: p, end: p + length };
}

function decodeOid(der: Buffer, tlv: Tlv): string {
  if (tlv.tag !== 0x06 || tlv.end === tlv.start) throw new Error('expected an OBJECT IDENTIFIER');
  const first = der[tlv.start];
  const arcs: number[] = first < 80 ? [Math.floor(first / 40), first % 40] : [2, first - 80];
  let value = 0;
  for (let i = tlv.start + 1; i < tlv.end; i++) {
    value = value * 128 + (der[i] & 0x7f);
    if (!(der[i] & 0x80)) {
      arcs.push(value);
      value = 0;
    }
  }
  return arcs.join('.');
}

/** The hash algorithm of an RSASSA-PSS AlgorithmIdentifier's parameters (default SHA-1). */
function pssHash(der: Buffer, params: Tlv | undefined): string | undefined {
  if (params === undefined || params.tag !== 0x30 || params.start === params.end) return DIGEST_HASH['1.3.14.3.2.26'];
  const first = readTlv(der, params.start, params.end);
  if (first.tag !== 0xa0) return DIGEST_HASH['1.3.14.3.2.26']; // hashAlgorithm absent: SHA-1
  const algorithm = readTlv(der, first.start, first.end);
  if (algorithm.tag !== 0x30) throw new Error('expected an AlgorithmIdentifier');
  return DIGEST_HASH[decodeOid(der, readTlv(der, algorithm.start, algorithm.end))];
}

/** The signature algorithm OID of a DER certificate. */
export function signatureAlgorithmOid(der: Buffer): string {
  return readSignatureAlgorithm(der).oid;
}

function readSignatureAlgorithm(der: Buffer): { oid: string; params: Tlv | undefined } {
  const cert = readTlv(der, 0, der.length);
  if (cert.tag !== 0x30) throw new Error('expected a Certificate SEQUENCE');
  const tbs = readTlv(der, cert.start, cert.end);
  if (tbs.tag !== 0x30) throw new Error('expected a TBSCertificate SEQUENCE');
  const algorithm = readTlv(der, tbs.end, cert.end);
  if (algorithm.tag !== 0x30) throw new Error('expected an AlgorithmIdentifier SEQUENCE');
  const oidTlv = readTlv(der, algorithm.start, algorithm.end);
  const params = oidTlv.end < algorithm.end ? readTlv(der, oidTlv.end, algorithm.end) : undefined;
  return { oid: decodeOid(der, oidTlv), params };
}

/**
 * The Node hash name RFC 5929 §4.1 prescribes for a DER certificate, or undefined when its
 * signature algorithm has no single hash we know (or the DER cannot be read).
 */
export function serverEndPointHash(der: Buffer): string | undefined {
  try {
    const { oid, params } = readSignatureAlgorithm(der);
    if (oid === RSASSA_PSS) return pssHash(der, params);
    return SIGNATURE_HASH[oid];
  } catch {
    return undefined;
  }
}

/** tls-server-end-point data for a DER certificate, or undefined (see serverEndPointHash). */
export function tlsServerEndPoint(der: Buffer): Buffer | undefined {
  const hash = serverEndPointHash(der);
  return hash === undefined ? undefined : createHash(hash).update(der).digest();
}

/**
 * Keying material with no context argument at all. Node accepts that (its typings insist on
 * a context); under TLS 1.3 an absent and an empty context give the same result anyway.
 */
function exportWithoutContext(socket: TLSSocket, length: number, label: string): Buffer {
  const exportKeyingMaterial = socket.exportKeyingMaterial as (this: TLSSocket, length: number, label: string) => Buffer;
  return exportKeyingMaterial.call(socket, length, label);
}

/**
 * tls-server-end-point data per certificate source (a listener's SecureContext): the server
 * presents the same certificate on every connection of a context, so its hash is computed
 * once, not per connection. `null`: the certificate gives no tls-server-end-point.
 */
const endPointByContext = new WeakMap<object, Buffer | null>();

function serverCertificateDer(socket: TLSSocket): Buffer | undefined {
  const cert = socket.getCertificate();
  return cert && 'raw' in cert && Buffer.isBuffer(cert.raw) ? cert.raw : undefined;
}

function endPointData(socket: TLSSocket, context: object | undefined): Buffer | undefined {
  if (context === undefined) {
    const der = serverCertificateDer(socket);
    return der === undefined ? undefined : tlsServerEndPoint(der);
  }
  let data = endPointByContext.get(context);
  if (data === undefined) {
    const der = serverCertificateDer(socket);
    // No certificate yet (handshake not done): don't cache the absence.
    if (der === undefined) return undefined;
    data = tlsServerEndPoint(der) ?? null;
    endPointByContext.set(context, data);
  }
  return data ?? undefined;
}

/** A tls-exporter binding whose keying material is exported on first use only. */
function lazyExporter(socket: TLSSocket): ChannelBinding {
  let data: Buffer | undefined;
  return {
    type: 'tls-exporter',
    get data(): Buffer {
      if (data === undefined) {
        try {
          data = exportWithoutContext(socket, 32, 'EXPORTER-Channel-Binding');
        } catch {
          // No keying material any more (socket closed): nothing a client can match.
          data = Buffer.alloc(0);
        }
      }
      return data;
    },
  };
}

/**
 * What a server-side TLS socket can bind to, tls-exporter first. Empty when nothing is
 * available.
 *
 * Cheap enough to call for every connection: the tls-exporter data is exported only when a
 * -PLUS exchange reads it, and with `context` (the SecureContext the socket was created with,
 * or anything that identifies its certificate) the tls-server-end-point hash is computed once
 * per context instead of reading and hashing the certificate on every connection.
 */
export function channelBindingsFor(socket: TLSSocket, context?: object): ChannelBinding[] {
  const bindings: ChannelBinding[] = [];
  if (socket.getProtocol() === 'TLSv1.3') bindings.push(lazyExporter(socket));
  const endPoint = endPointData(socket, context);
  if (endPoint !== undefined) bindings.push({ type: 'tls-server-end-point', data: endPoint });
  return bindings;
}
