/**
 * XEP-0077 in-band registration: off by default; when on, registration before login (over
 * TLS only), then login with SCRAM; conflicts, bad names, weak passwords, the per-address
 * limit; password change and account removal after login.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { ScriptedClient, startTestServer, type TestServer } from '../support/index.ts';
import { addressKey } from '../../src/modules/register/index.ts';

const NS_REGISTER = 'jabber:iq:register';
const NS_FEATURE = 'http://jabber.org/features/iq-register';
const NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';

function registerSet(id: string, username: string | undefined, password: string | undefined): string {
  const u = username === undefined ? '' : `<username>${username}</username>`;
  const p = password === undefined ? '' : `<password>${password}</password>`;
  return `<iq type='set' id='${id}'><query xmlns='${NS_REGISTER}'>${u}${p}</query></iq>`;
}

function errorPattern(id: string, condition: string, type?: string): string {
  return `<iq type='error' id='${id}'><error${type ? ` type='${type}'` : ''}><${condition} xmlns='${NS_STANZAS}'/></error></iq>`;
}

function hasRegisterFeature(client: ScriptedClient): boolean {
  return client.features().getChild('register', NS_FEATURE) !== undefined;
}

/** Register on a fresh, not yet authenticated stream; returns the IQ response. */
async function registerOn(client: ScriptedClient, username: string | undefined, password: string | undefined) {
  const id = client.id('reg');
  return client.iq(registerSet(id, username, password));
}

describe('registration rate-limit keys', () => {
  it('count IPv4 addresses alone and IPv6 addresses per /64', () => {
    assert.equal(addressKey('192.0.2.7'), '192.0.2.7');
    assert.equal(addressKey('::ffff:192.0.2.7'), '192.0.2.7');
    assert.equal(addressKey('2001:db8:0:1:aaaa::1'), '2001:db8:0:1::/64');
    assert.equal(addressKey('2001:0db8:0000:0001:bbbb:cccc:dddd:eeee'), '2001:db8:0:1::/64');
    assert.equal(addressKey('2001:db8::1'), '2001:db8:0:0::/64');
    assert.equal(addressKey('::1'), '0:0:0:0::/64');
  });
});

describe('in-band registration is off by default', () => {
  let server: TestServer;

  before(async () => {
    server = await startTestServer();
    await server.addUser('alice', 'alice-password');
  });
  after(() => server.stop());

  it('offers no stream feature and closes an unauthenticated stream that tries it', async () => {
    const c = await server.connect();
    assert.equal(hasRegisterFeature(c), false);
    c.send(`<iq type='get' id='g1'><query xmlns='${NS_REGISTER}'/></iq>`);
    // Without the module nothing handles pre-authentication IQs: RFC 6120 stream error.
    await c.expectStreamError('not-authorized');
  });

  it('answers an authenticated request with service-unavailable', async () => {
    const alice = await server.login('alice', 'alice-password');
    alice.send(`<iq type='get' id='g2'><query xmlns='${NS_REGISTER}'/></iq>`);
    await alice.expect(errorPattern('g2', 'service-unavailable'));
    alice.send(`<iq type='set' id='g3'><query xmlns='${NS_REGISTER}'><remove/></query></iq>`);
    await alice.expect(errorPattern('g3', 'service-unavailable'));
    await alice.close();
    // The account is still there.
    (await server.login('alice', 'alice-password')).destroy();
  });
});

describe('in-band registration', () => {
  let server: TestServer;

  before(async () => {
    server = await startTestServer({
      toml: `
        [modules.register]
        trusted_addresses = ["127.0.0.0/8", "::1"]
      `,
    });
  });
  after(() => server.stop());

  it('offers the stream feature over TLS and the registration fields', async () => {
    const c = await server.connect();
    assert.ok(hasRegisterFeature(c), 'register stream feature offered');
    const form = await c.iq(`<iq type='get' id='f1' to='${server.domain}'><query xmlns='${NS_REGISTER}'/></iq>`);
    const query = form.getChild('query', NS_REGISTER);
    assert.equal(form.attrs.type, 'result');
    assert.ok(query?.getChild('instructions'), 'instructions');
    assert.ok(query?.getChild('username'), 'username field');
    assert.ok(query?.getChild('password'), 'password field');
    assert.equal(query?.getChild('registered'), undefined);
    await c.close();
  });

  it('registers an account that can then log in with SCRAM', async () => {
    const c = await server.connect();
    const result = await registerOn(c, 'Newbie', 'correct horse');
    assert.equal(result.attrs.type, 'result', result.toString());
    // Same stream: authenticate as the new account (the name was PRECIS-prepared: lower case).
    await c.login('newbie', 'correct horse', { mechanism: 'SCRAM-SHA-256' });
    assert.equal(await c.bind('desk'), `newbie@${server.domain}/desk`);
    await c.close();
    const again = await server.login('NEWBIE', 'correct horse', { mechanism: 'SCRAM-SHA-1' });
    assert.equal(again.jid, `newbie@${server.domain}/${again.jid!.split('/')[1]}`);
    await again.close();
  });

  it('refuses a taken or reserved username with conflict', async () => {
    await server.addUser('taken', 'some-password');
    const c = await server.connect();
    c.send(registerSet('r1', 'taken', 'other-password'));
    await c.expect(errorPattern('r1', 'conflict', 'cancel'));
    c.send(registerSet('r2', 'TAKEN', 'other-password'));
    await c.expect(errorPattern('r2', 'conflict', 'cancel'));
    c.send(registerSet('r3', 'admin', 'other-password'));
    await c.expect(errorPattern('r3', 'conflict', 'cancel'));
    // The existing account's password is unchanged.
    await c.close();
    (await server.login('taken', 'some-password')).destroy();
  });

  it('refuses usernames that cannot be a JID localpart with jid-malformed', async () => {
    const c = await server.connect();
    for (const [i, name] of ['bad@name', 'with space', 'slash/name', 'quote&apos;s'].entries()) {
      c.send(registerSet(`m${i}`, name, 'long enough password'));
      await c.expect(errorPattern(`m${i}`, 'jid-malformed', 'modify'));
    }
    await c.close();
  });

  it('refuses missing fields and weak passwords with not-acceptable', async () => {
    const c = await server.connect();
    const cases: Array<[string | undefined, string | undefined]> = [
      ['nopassword', undefined], ['nopassword', ''], [undefined, 'long enough password'], ['', 'long enough password'],
      ['shortpw', 'short'], ['ctrlpw', 'tabbed\tpassword'],
    ];
    for (const [i, [username, password]] of cases.entries()) {
      c.send(registerSet(`w${i}`, username, password));
      await c.expect(errorPattern(`w${i}`, 'not-acceptable', 'modify'));
    }
    await c.close();
    // None of them exists.
    for (const name of ['nopassword', 'shortpw', 'ctrlpw']) {
      const probe = await server.connect();
      const outcome = await probe.authenticate(name, 'short');
      assert.equal(outcome.ok, false);
      probe.destroy();
    }
  });

  it('refuses removal before login', async () => {
    const c = await server.connect();
    c.send(`<iq type='set' id='x1'><query xmlns='${NS_REGISTER}'><remove/></query></iq>`);
    await c.expect(errorPattern('x1', 'unexpected-request'));
    await c.close();
  });

  it('answers <registered/> after login and changes the password', async () => {
    await server.addUser('changer', 'first-password');
    const c = await server.login('changer', 'first-password', { resource: 'a' });
    const info = await c.iq(`<iq type='get' id='i1'><query xmlns='${NS_REGISTER}'/></iq>`);
    assert.equal(info.attrs.type, 'result');
    assert.ok(info.getChild('query', NS_REGISTER)?.getChild('registered'));
    assert.equal(info.getChild('query', NS_REGISTER)?.getChildText('username'), 'changer');

    // Someone else's name, no username, a weak password: refused, password unchanged.
    c.send(`<iq type='set' id='p1' to='${server.domain}'><query xmlns='${NS_REGISTER}'><username>taken</username><password>second-password</password></query></iq>`);
    await c.expect(errorPattern('p1', 'forbidden'));
    c.send(`<iq type='set' id='p2'><query xmlns='${NS_REGISTER}'><password>second-password</password></query></iq>`);
    await c.expect(errorPattern('p2', 'bad-request'));
    c.send(`<iq type='set' id='p3'><query xmlns='${NS_REGISTER}'><username>changer</username><password>short</password></query></iq>`);
    await c.expect(errorPattern('p3', 'not-acceptable'));
    c.send(`<iq type='set' id='p4'><query xmlns='${NS_REGISTER}'><username>changer</username><password/></query></iq>`);
    await c.expect(errorPattern('p4', 'not-acceptable'));

    c.send(`<iq type='set' id='p5' to='${server.domain}'><query xmlns='${NS_REGISTER}'><username>changer@${server.domain}</username><password>second-password</password></query></iq>`);
    await c.expect(`<iq type='result' id='p5'/>`);

    const old = await server.connect();
    const outcome = await old.authenticate('changer', 'first-password');
    assert.equal(outcome.ok, false);
    assert.equal(!outcome.ok && outcome.condition, 'not-authorized');
    old.destroy();
    (await server.login('changer', 'second-password')).destroy();
    // The password never reaches the logs.
    assert.ok(!server.logs.some((line) => line.includes('second-password') || line.includes('first-password')));
    await c.close();
  });

  it('removes the account: result first, then every session ends and login fails', async () => {
    await server.addUser('leaver', 'leaver-password');
    await server.addUser('friend', 'friend-password');
    const both = { subscription: 'both' as const, askOut: false, askIn: false, groups: [] };
    await server.server.storage.roster.put({ username: 'leaver', domain: server.domain }, { jid: `friend@${server.domain}`, ...both });
    await server.server.storage.roster.put({ username: 'friend', domain: server.domain }, { jid: `leaver@${server.domain}`, ...both });
    const friend = await server.login('friend', 'friend-password', { resource: 'f' });
    await friend.iq(`<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>`);
    const one = await server.login('leaver', 'leaver-password', { resource: 'one' });
    const two = await server.login('leaver', 'leaver-password', { resource: 'two' });
    one.send(`<iq type='set' id='bye'><query xmlns='${NS_REGISTER}'><remove/><username>leaver</username></query></iq>`);
    await one.expect(errorPattern('bye', 'bad-request'));
    one.send(`<iq type='set' id='bye2'><query xmlns='${NS_REGISTER}'><remove/></query></iq>`);
    await one.expect(`<iq type='result' id='bye2'/>`);
    await one.expectStreamError('not-authorized');
    await two.expectStreamError('not-authorized', { skip: true });
    // The contact's roster no longer has a subscription with the removed account.
    await friend.expect(`<iq type='set'><query xmlns='jabber:iq:roster'><item jid='leaver@${server.domain}' subscription='none'/></query></iq>`, { skip: true });
    await friend.close();

    const probe = await server.connect();
    const outcome = await probe.authenticate('leaver', 'leaver-password');
    assert.equal(outcome.ok, false);
    // The name is free again, for a new account.
    assert.equal((await registerOn(probe, 'leaver', 'a new password')).attrs.type, 'result');
    await probe.login('leaver', 'a new password');
    await probe.bind();
    const list = await probe.iq(`<iq type='get' id='bl'><blocklist xmlns='urn:xmpp:blocking'/></iq>`);
    assert.equal(list.getChild('blocklist')?.getChildElements().length ?? 0, 0);
    await probe.close();
  });
});

describe('in-band registration limits', () => {
  let server: TestServer;

  before(async () => {
    server = await startTestServer({
      listeners: ['starttls-optional'],
      toml: `
        [modules.register]
        registrations_per_address = 2
        window = 3600
        min_password_length = 10
        allow_account_removal = false
        [auth]
        plain_without_tls = false
      `,
    });
  });
  after(() => server.stop());

  it('refuses registration and password changes over a stream without TLS', async () => {
    const c = await ScriptedClient.connect({ port: server.port(), domain: server.domain, tls: 'none', name: 'cleartext' });
    c.send(`<iq type='get' id='c1'><query xmlns='${NS_REGISTER}'/></iq>`);
    await c.expect(errorPattern('c1', 'policy-violation', 'modify'));
    c.send(registerSet('c2', 'sniffed', 'sniffed-password'));
    await c.expect(errorPattern('c2', 'policy-violation', 'modify'));
    // After STARTTLS, the same connection may register.
    await c.startTls();
    assert.ok(hasRegisterFeature(c));
    assert.equal((await registerOn(c, 'secured', 'secured-password')).attrs.type, 'result');
    await c.close();

    // Logged in without TLS (SCRAM never sends the password): no password change.
    const plain = await ScriptedClient.connect({ port: server.port(), domain: server.domain, tls: 'none', name: 'cleartext-user' });
    await plain.login('secured', 'secured-password');
    await plain.bind();
    plain.send(`<iq type='set' id='c3'><query xmlns='${NS_REGISTER}'><username>secured</username><password>sniffed-password</password></query></iq>`);
    await plain.expect(errorPattern('c3', 'not-authorized'));
    // Removal is switched off here.
    plain.send(`<iq type='set' id='c4'><query xmlns='${NS_REGISTER}'><remove/></query></iq>`);
    await plain.expect(errorPattern('c4', 'not-allowed'));
    await plain.close();
  });

  it('limits registrations per address', async () => {
    // One was used by the previous test ('secured'); one more is allowed.
    const c = await server.connect();
    c.send(registerSet('l0', 'tooshort', 'short'));
    await c.expect(errorPattern('l0', 'not-acceptable')); // invalid requests do not count
    assert.equal((await registerOn(c, 'second', 'second-password')).attrs.type, 'result');
    c.send(registerSet('l1', 'third', 'third-password'));
    await c.expect(errorPattern('l1', 'policy-violation', 'wait'));
    await c.close();
    const other = await server.connect();
    other.send(registerSet('l2', 'fourth', 'fourth-password'));
    await other.expect(errorPattern('l2', 'policy-violation', 'wait'));
    await other.close();
    const probe = await server.connect();
    assert.equal((await probe.authenticate('third', 'third-password')).ok, false);
    probe.destroy();
  });
});

describe('in-band registration closed', () => {
  let server: TestServer;

  before(async () => {
    server = await startTestServer({
      toml: `
        [modules.register]
        allow_registration = false
        registration_url = "https://accounts.example.org/signup"
      `,
    });
    await server.addUser('alice', 'alice-password');
  });
  after(() => server.stop());

  it('offers no feature, redirects to the URL and refuses a registration', async () => {
    const c = await server.connect();
    assert.equal(hasRegisterFeature(c), false);
    const form = await c.iq(`<iq type='get' id='u1'><query xmlns='${NS_REGISTER}'/></iq>`);
    assert.equal(form.attrs.type, 'result');
    assert.equal(form.getChild('query', NS_REGISTER)?.getChild('x', 'jabber:x:oob')?.getChildText('url'), 'https://accounts.example.org/signup');
    assert.equal(form.getChild('query', NS_REGISTER)?.getChild('username'), undefined);
    c.send(registerSet('u2', 'someone', 'someone-password'));
    await c.expect(errorPattern('u2', 'service-unavailable'));
    await c.close();
  });

  it('still lets a user change their password', async () => {
    const alice = await server.login('alice', 'alice-password');
    alice.send(`<iq type='set' id='cp'><query xmlns='${NS_REGISTER}'><username>alice</username><password>alice-new-password</password></query></iq>`);
    await alice.expect(`<iq type='result' id='cp'/>`);
    await alice.close();
    (await server.login('alice', 'alice-new-password')).destroy();
  });
});
