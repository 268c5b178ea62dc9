import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import path from 'node:path';
import tls from 'node:tls';
import type { Logger } from 'pino';
import { generate } from 'selfsigned';

export interface CertificatePaths {
  certfile: string;
  keyfile: string;
}

/**
 * The certificate a listener presents: the configured PEM files, or a self-signed one for
 * the served hosts, generated once into the data folder so that `npm start` works with no
 * set-up. Regenerated when the host list changes or it is about to expire.
 */
export async function loadOrCreateCertificate(
  configured: CertificatePaths | undefined,
  dataDir: string,
  hosts: string[],
  log: Logger,
): Promise<{ cert: string; key: string }> {
  if (configured !== undefined) {
    return { cert: await readFile(configured.certfile, 'utf8'), key: await readFile(configured.keyfile, 'utf8') };
  }
  const certfile = path.join(dataDir, 'self-signed.crt');
  const keyfile = path.join(dataDir, 'self-signed.key');
  try {
    const cert = await readFile(certfile, 'utf8');
    const key = await readFile(keyfile, 'utf8');
    if (coversHosts(cert, hosts)) return { cert, key };
  } catch {
    // Not generated yet.
  }
  log.warn({ certfile, hosts }, 'no certificate configured: generating a self-signed one (clients will not trust it)');
  const now = new Date();
  const pems = await generate([{ name: 'commonName', value: hosts[0] }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: new Date(now.getTime() - 60_000),
    notAfterDate: new Date(now.getTime() + 825 * 86_400_000),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: hosts.map((host) => ({ type: 2 as const, value: host })) },
    ],
  });
  await mkdir(dataDir, { recursive: true });
  await writeFile(keyfile, pems.private, { mode: 0o600 });
  await writeFile(certfile, pems.cert);
  return { cert: pems.cert, key: pems.private };
}

function coversHosts(pem: string, hosts: string[]): boolean {
  const cert = new X509Certificate(pem);
  if (new Date(cert.validTo).getTime() < Date.now() + 7 * 86_400_000) return false;
  return hosts.every((host) => cert.checkHost(host) !== undefined);
}

export function secureContext(pems: { cert: string; key: string }, minVersion: tls.SecureVersion): tls.SecureContext {
  return tls.createSecureContext({ cert: pems.cert, key: pems.key, minVersion });
}
