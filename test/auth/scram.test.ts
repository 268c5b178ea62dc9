import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import {
  ScramServer,
  type ScramServerOptions,
  deriveCredentials,
  deriveKeys,
  decodeSaslName,
  fakeKeys,
  verifyPassword,
} from '../../src/auth/scram.ts';
import type { ChannelBinding, SaslStep } from '../../src/auth/sasl.ts';
import type { ScramCredentials, ScramHash } from '../../src/storage/types.ts';

const NODE_HASH: Record<ScramHash, string> = { 'SHA-1': 'sha1', 'SHA-256': 'sha256', 'SHA-512': 'sha512' };
const SIZE: Record<ScramHash, number> = { 'SHA-1': 20, 'SHA-256': 32, 'SHA-512': 64 };

async function credentialsWith(hash: ScramHash, password: string, salt: Buffer, iterations = 4096): Promise<ScramCredentials> {
  const creds = await deriveCredentials(password, iterations);
  creds[hash] = await deriveKeys(hash, password, salt, iterations);
  return creds;
}

function server(overrides: Partial<ScramServerOptions> & { users?: Record<string, ScramCredentials> }): ScramServer {
  const users = overrides.users ?? {};
  return new ScramServer({
    hash: 'SHA-256',
    plus: false,
    domain: 'example.com',
    channelBindings: [],
    plusOffered: false,
    getCredentials: async (u) => users[u],
    ...overrides,
  });
}

function text(step: SaslStep): string {
  assert.ok(step.kind === 'challenge' || step.kind === 'success', `expected data, got ${JSON.stringify(step)}`);
  return step.data ? step.data.toString('utf8') : '';
}

/** A minimal SCRAM client, independent of the server code. */
function clientFinal(
  hash: ScramHash,
  password: string,
  clientFirstBare: string,
  serverFirst: string,
  cbInput: Buffer,
): { message: string; serverSignature: string } {
  const attrs = Object.fromEntries(serverFirst.split(',').map((a) => [a[0], a.slice(2)]));
  const salted = pbkdf2Sync(password, Buffer.from(attrs.s, 'base64'), Number(attrs.i), SIZE[hash], NODE_HASH[hash]);
  const hmac = (key: Buffer, data: string) => createHmac(NODE_HASH[hash], key).update(data).digest();
  const clientKey = hmac(salted, 'Client Key');
  const storedKey = createHash(NODE_HASH[hash]).update(clientKey).digest();
  const withoutProof = `c=${cbInput.toString('base64')},r=${attrs.r}`;
  const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
  const signature = hmac(storedKey, authMessage);
  const proof = Buffer.from(clientKey.map((b, i) => b ^ signature[i]));
  return {
    message: `${withoutProof},p=${proof.toString('base64')}`,
    serverSignature: hmac(hmac(salted, 'Server Key'), authMessage).toString('base64'),
  };
}

const b = (s: string) => Buffer.from(s, 'utf8');

test('RFC 5802 §5 SCRAM-SHA-1 example', async () => {
  const users = { user: await credentialsWith('SHA-1', 'pencil', Buffer.from('QSXCR+Q6sek8bf92', 'base64')) };
  const s = server({ hash: 'SHA-1', users, nonce: () => '3rfcNHYJY1ZVvWVs7j' });
  const first = await s.step(b('n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL'));
  assert.equal(first.kind, 'challenge');
  assert.equal(text(first), 'r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096');
  const final = await s.step(
    b('c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts='),
  );
  assert.equal(final.kind, 'success');
  assert.equal(text(final), 'v=rmF9pqV8S7suAoZWja4dJRkFsKQ=');
  assert.equal(final.kind === 'success' && final.username, 'user');
});

test('RFC 7677 §3 SCRAM-SHA-256 example', async () => {
  const users = { user: await credentialsWith('SHA-256', 'pencil', Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64')) };
  const s = server({ hash: 'SHA-256', users, nonce: () => '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0' });
  const first = await s.step(b('n,,n=user,r=rOprNGfwEbeRWgbNEkqO'));
  assert.equal(
    text(first),
    'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  );
  const final = await s.step(
    b('c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ='),
  );
  assert.equal(final.kind, 'success');
  assert.equal(text(final), 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=');
});

for (const hash of ['SHA-1', 'SHA-256', 'SHA-512'] as const) {
  test(`full exchange with random nonce and derived credentials: ${hash}`, async () => {
    const users = { alice: await deriveCredentials('correct horse', 4096) };
    const s = server({ hash, users });
    const bare = 'n=alice,r=abcdefghijkl';
    const first = text(await s.step(b(`n,,${bare}`)));
    assert.match(first, /^r=abcdefghijkl[^,]+,s=[A-Za-z0-9+/=]+,i=4096$/);
    const { message, serverSignature } = clientFinal(hash, 'correct horse', bare, first, b('n,,'));
    const final = await s.step(b(message));
    assert.deepEqual(final, { kind: 'success', data: b(`v=${serverSignature}`), username: 'alice' });
  });
}

test('no initial response: empty challenge first', async () => {
  const s = server({});
  assert.deepEqual(await s.step(Buffer.alloc(0)), { kind: 'challenge', data: Buffer.alloc(0) });
  const first = await s.step(b('n,,n=nobody,r=xyz'));
  assert.equal(first.kind, 'challenge');
});

test('wrong password and unknown user fail the same way', async () => {
  const users = { alice: await deriveCredentials('secret', 4096) };
  const attempt = async (user: string) => {
    const s = server({ users });
    const bare = `n=${user},r=nonce123`;
    const first = text(await s.step(b(`n,,${bare}`)));
    assert.match(first, /^r=nonce123[^,]+,s=[A-Za-z0-9+/]{22}==,i=4096$/);
    return s.step(b(clientFinal('SHA-256', 'wrong', bare, first, b('n,,')).message));
  };
  const wrong = await attempt('alice');
  const unknown = await attempt('mallory');
  assert.deepEqual(wrong, { kind: 'failure', condition: 'not-authorized', text: 'invalid-proof' });
  assert.deepEqual(unknown, wrong);
});

test('unknown users get a stable salt per username', () => {
  assert.deepEqual(fakeKeys('SHA-256', 'mallory').salt, fakeKeys('SHA-256', 'mallory').salt);
  assert.notDeepEqual(fakeKeys('SHA-256', 'mallory').salt, fakeKeys('SHA-256', 'trudy').salt);
});

test('usernames are SASLname-decoded and PRECIS-prepared', async () => {
  assert.equal(decodeSaslName('a=2Cb=3Dc'), 'a,b=c');
  assert.equal(decodeSaslName('a=3D2C'), 'a=2C');
  assert.equal(decodeSaslName('a=41'), undefined);
  assert.equal(decodeSaslName(''), undefined);
  const users = { alice: await deriveCredentials('pw', 4096) };
  const s = server({ users });
  const bare = 'n=ＡLICE,r=n1';
  const first = text(await s.step(b(`n,,${bare}`)));
  const final = await s.step(b(clientFinal('SHA-256', 'pw', bare, first, b('n,,')).message));
  assert.equal(final.kind === 'success' && final.username, 'alice');
  const bad = await server({ users }).step(b('n,,n=a=41,r=n1'));
  assert.deepEqual(bad, { kind: 'failure', condition: 'malformed-request', text: 'invalid-username-encoding' });
});

test('bad GS2 headers and messages are malformed requests', async () => {
  for (const msg of ['x,,n=user,r=abc', 'n,n=user,r=abc', 'F,n,,n=user,r=abc', 'n,,r=abc,n=user', 'n,,n=user', 'n,,n=user,r=a,b', 'n,,n=user,r=']) {
    const step = await server({}).step(b(msg));
    assert.equal(step.kind, 'failure', msg);
    assert.equal(step.kind === 'failure' && step.condition, 'malformed-request', msg);
  }
  const mext = await server({}).step(b('n,,m=ext,n=user,r=abc'));
  assert.deepEqual(mext, { kind: 'failure', condition: 'malformed-request', text: 'extensions-not-supported' });
  const invalidUtf8 = await server({}).step(Buffer.from([0x6e, 0x2c, 0x2c, 0xff]));
  assert.equal(invalidUtf8.kind, 'failure');
});

test('client-final with a bad nonce, bad base64 or missing proof fails', async () => {
  const users = { user: await deriveCredentials('pencil', 4096) };
  for (const final of ['c=biws,r=other,p=AAAA', 'c=biws,r=cn', 'c=bi!s,r=cnSN,p=AAAA']) {
    const s = server({ users, nonce: () => 'SN' });
    await s.step(b('n,,n=user,r=cn'));
    const step = await s.step(b(final));
    assert.equal(step.kind, 'failure', final);
  }
});

test('authzid must be empty or the user\'s own bare JID', async () => {
  const users = { user: await deriveCredentials('pencil', 4096) };
  const ok = server({ users });
  const bare = 'n=user,r=n1';
  const first = text(await ok.step(b(`n,a=User@Example.com,${bare}`)));
  const final = await ok.step(b(clientFinal('SHA-256', 'pencil', bare, first, b('n,a=User@Example.com,')).message));
  assert.equal(final.kind, 'success');
  for (const authzid of ['admin@example.com', 'user@example.org', 'user@example.com/res']) {
    const step = await server({ users }).step(b(`n,a=${authzid},${bare}`));
    assert.deepEqual(step, { kind: 'failure', condition: 'invalid-authzid', text: 'invalid-authzid' }, authzid);
  }
});

const exporter: ChannelBinding = { type: 'tls-exporter', data: randomBytes(32) };
const endPoint: ChannelBinding = { type: 'tls-server-end-point', data: randomBytes(32) };

test('-PLUS with tls-exporter succeeds', async () => {
  const users = { user: await deriveCredentials('pencil', 4096) };
  for (const binding of [exporter, endPoint]) {
    const s = server({ hash: 'SHA-512', plus: true, plusOffered: true, channelBindings: [exporter, endPoint], users });
    const gs2 = `p=${binding.type},,`;
    const bare = 'n=user,r=plusnonce';
    const first = text(await s.step(b(gs2 + bare)));
    const cbInput = Buffer.concat([b(gs2), binding.data]);
    const { message, serverSignature } = clientFinal('SHA-512', 'pencil', bare, first, cbInput);
    assert.deepEqual(await s.step(b(message)), { kind: 'success', data: b(`v=${serverSignature}`), username: 'user' });
  }
});

test('channel binding mismatch fails', async () => {
  const users = { user: await deriveCredentials('pencil', 4096) };
  const s = server({ plus: true, plusOffered: true, channelBindings: [exporter], users });
  const gs2 = 'p=tls-exporter,,';
  const bare = 'n=user,r=plusnonce';
  const first = text(await s.step(b(gs2 + bare)));
  const wrong = Buffer.concat([b(gs2), randomBytes(32)]);
  const final = await s.step(b(clientFinal('SHA-256', 'pencil', bare, first, wrong).message));
  assert.deepEqual(final, { kind: 'failure', condition: 'not-authorized', text: 'channel-bindings-dont-match' });
  // A non-PLUS exchange must echo exactly its GS2 header.
  const s2 = server({ users });
  const first2 = text(await s2.step(b('n,,' + bare)));
  const final2 = await s2.step(b(clientFinal('SHA-256', 'pencil', bare, first2, b('y,,')).message));
  assert.equal(final2.kind === 'failure' && final2.text, 'channel-bindings-dont-match');
});

test('channel binding negotiation errors', async () => {
  const plus = { plus: true, plusOffered: true, channelBindings: [exporter] };
  const cases: [Partial<ScramServerOptions>, string, string][] = [
    [plus, 'n,,n=user,r=a', 'malformed-request'],
    [plus, 'y,,n=user,r=a', 'malformed-request'],
    [plus, 'p=tls-unique,,n=user,r=a', 'malformed-request'],
    [{ channelBindings: [exporter], plusOffered: true }, 'p=tls-exporter,,n=user,r=a', 'malformed-request'],
  ];
  for (const [options, msg, condition] of cases) {
    const step = await server(options).step(b(msg));
    assert.equal(step.kind === 'failure' && step.condition, condition, msg);
  }
});

test('y flag while -PLUS is offered is a downgrade', async () => {
  const users = { user: await deriveCredentials('pencil', 4096) };
  const step = await server({ channelBindings: [exporter], plusOffered: true, users }).step(b('y,,n=user,r=a'));
  assert.deepEqual(step, { kind: 'failure', condition: 'not-authorized', text: 'server-does-support-channel-binding' });
  // Without a -PLUS offer (or without binding data) `y` is fine.
  const s = server({ channelBindings: [], plusOffered: false, users });
  const bare = 'n=user,r=a';
  const first = text(await s.step(b('y,,' + bare)));
  const final = await s.step(b(clientFinal('SHA-256', 'pencil', bare, first, b('y,,')).message));
  assert.equal(final.kind, 'success');
});

test('steps after the end fail', async () => {
  const s = server({});
  await s.step(b('x'));
  assert.equal((await s.step(b('n,,n=user,r=a'))).kind, 'failure');
});

test('deriveCredentials: iteration floor, random salts, password preparation', async () => {
  await assert.rejects(deriveCredentials('pw', 4095), RangeError);
  await assert.rejects(deriveCredentials('', 4096));
  const creds = await deriveCredentials('pass\u3000word', 4096);
  for (const hash of ['SHA-1', 'SHA-256', 'SHA-512'] as const) {
    assert.equal(creds[hash].salt.length, 16);
    assert.equal(creds[hash].iterations, 4096);
    assert.equal(creds[hash].storedKey.length, SIZE[hash]);
  }
  assert.notDeepEqual(creds['SHA-1'].salt, creds['SHA-256'].salt);
  // U+3000 is mapped to U+0020 by OpaqueString.
  assert.equal(await verifyPassword('SHA-256', creds['SHA-256'], 'pass word'), true);
  assert.equal(await verifyPassword('SHA-256', creds['SHA-256'], 'password'), false);
});
