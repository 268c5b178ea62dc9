import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { generate } from 'selfsigned';
import { channelBindingsFor, serverEndPointHash, signatureAlgorithmOid } from '../../src/auth/channel-binding.ts';

async function certificate(algorithm: string) {
  const pems = await generate([{ name: 'commonName', value: 'localhost' }], { algorithm, keySize: 2048 });
  return { key: pems.private, cert: pems.cert, der: new X509Certificate(pems.cert).raw };
}

test('signature algorithm and RFC 5929 hash from the DER', async () => {
  const sha256 = await certificate('sha256');
  assert.equal(signatureAlgorithmOid(sha256.der), '1.2.840.113549.1.1.11');
  assert.equal(serverEndPointHash(sha256.der), 'sha256');
  const sha512 = await certificate('sha512');
  assert.equal(serverEndPointHash(sha512.der), 'sha512');
  const sha1 = await certificate('sha1');
  assert.equal(signatureAlgorithmOid(sha1.der), '1.2.840.113549.1.1.5');
  assert.equal(serverEndPointHash(sha1.der), 'sha256'); // SHA-1 is upgraded to SHA-256
  assert.equal(serverEndPointHash(Buffer.from([0x30, 0x03, 0x02, 0x01])), undefined); // garbage
});

async function connect(options: tls.TlsOptions, clientOptions: tls.ConnectionOptions = {}) {
  const server = tls.createServer(options);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'secureConnection') as Promise<[tls.TLSSocket]>;
  const client = tls.connect({
    port: (server.address() as AddressInfo).port,
    host: '127.0.0.1',
    rejectUnauthorized: false,
    ...clientOptions,
  });
  await once(client, 'secureConnect');
  const [socket] = await accepted;
  return {
    socket,
    client,
    close: () => {
      client.destroy();
      socket.destroy();
      server.close();
    },
  };
}

test('TLS 1.3: tls-exporter and tls-server-end-point match what the client computes', async () => {
  const { key, cert, der } = await certificate('sha256');
  const { socket, client, close } = await connect({ key, cert });
  try {
    assert.equal(socket.getProtocol(), 'TLSv1.3');
    const bindings = channelBindingsFor(socket);
    assert.deepEqual(
      bindings.map((b) => b.type),
      ['tls-exporter', 'tls-server-end-point'],
    );
    assert.deepEqual(bindings[0].data, client.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0)));
    assert.equal(bindings[0].data.length, 32);
    const peer = client.getPeerCertificate();
    assert.deepEqual(peer.raw, der);
    assert.deepEqual(bindings[1].data, createHash('sha256').update(peer.raw).digest());
  } finally {
    close();
  }
});

test('TLS 1.2: no tls-exporter', async () => {
  const { key, cert } = await certificate('sha256');
  const { socket, close } = await connect({ key, cert, maxVersion: 'TLSv1.2' });
  try {
    assert.equal(socket.getProtocol(), 'TLSv1.2');
    assert.deepEqual(
      channelBindingsFor(socket).map((b) => b.type),
      ['tls-server-end-point'],
    );
  } finally {
    close();
  }
});
