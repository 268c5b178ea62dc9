/**
 * Trust for the test servers' self-signed certificates in clients that take no TLS options.
 *
 * @xmpp/client 0.14 upgrades STARTTLS with `tls.connect({ socket, host: domain })` and offers
 * no way to pass a CA. Rather than switch verification off for the whole process
 * (NODE_TLS_REJECT_UNAUTHORIZED=0), `tls.connect` is wrapped once: a call that names a test
 * domain (servername or host) and brings no `ca` of its own gets the running test servers'
 * certificates as its trust anchors. Verification, including the host name check, stays on.
 */
import tls from 'node:tls';

const anchors = new Map<string, { domains: Set<string>; refs: number }>();
let installed = false;

/** Trust `certificatePem` for connections to `domains`; returns the function that undoes it. */
export function trustCertificate(certificatePem: string, domains: string[]): () => void {
  install();
  const entry = anchors.get(certificatePem) ?? { domains: new Set<string>(), refs: 0 };
  for (const domain of domains) entry.domains.add(domain.toLowerCase());
  entry.refs++;
  anchors.set(certificatePem, entry);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--entry.refs === 0) anchors.delete(certificatePem);
  };
}

/** The trusted certificates for a domain (empty when none). */
export function anchorsFor(domain: string): string[] {
  const name = domain.toLowerCase();
  return [...anchors].filter(([, entry]) => entry.domains.has(name)).map(([pem]) => pem);
}

type Connect = (...args: unknown[]) => tls.TLSSocket;

function install(): void {
  if (installed) return;
  installed = true;
  const mutable = tls as unknown as { connect: Connect };
  const original = mutable.connect;
  mutable.connect = function connect(this: unknown, ...args: unknown[]): tls.TLSSocket {
    const [options] = args;
    if (typeof options === 'object' && options !== null) {
      const opts = options as tls.ConnectionOptions;
      const name = opts.servername ?? opts.host;
      if (opts.ca === undefined && opts.rejectUnauthorized !== false && name !== undefined) {
        const ca = anchorsFor(name);
        if (ca.length > 0) args[0] = { ...opts, ca };
      }
    }
    return original.apply(this, args);
  };
}
