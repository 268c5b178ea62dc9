/**
 * XEP-0191 blocking command: the block list protocol with its pushes, and enforcement on
 * every stanza kind in both directions, JID matching, persistence, and presence effects.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { type ScriptedClient, type TestServer, startTestServer } from '../support/index.ts';

const NS = 'urn:xmpp:blocking';
const NS_ERRORS = 'urn:xmpp:blocking:errors';
const NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';
const PW = 'a-long-password';
const OTHER = 'other.test';

const blocked = (name: string, id: string, from?: string) =>
  `<${name} type='error' id='${id}'${from ? ` from='${from}'` : ''}><error type='cancel'><not-acceptable xmlns='${NS_STANZAS}'/><blocked xmlns='${NS_ERRORS}'/></error></${name}>`;
const unavailable = (name: string, id: string, from?: string) =>
  `<${name} type='error' id='${id}'${from ? ` from='${from}'` : ''}><error type='cancel'><service-unavailable xmlns='${NS_STANZAS}'/></error></${name}>`;
const items = (jids: string[]) => jids.map((j) => `<item jid='${j}'/>`).join('');

describe('XEP-0191 blocking command', () => {
  let server: TestServer;
  let n = 0;

  before(async () => {
    server = await startTestServer({ hosts: ['localhost', OTHER], listeners: ['starttls'], toml: '[modules.blocking]\nmax_items = 5\n' });
  });
  after(() => server.stop());

  /** Fresh accounts for one test: names like alice7, bob7. */
  async function users(...names: string[]): Promise<string[]> {
    n++;
    const out: string[] = [];
    for (const name of names) {
      const [local, domain] = name.split('@');
      const user = `${local}${n}@${domain ?? server.domain}`;
      await server.addUser(user, PW);
      out.push(user);
    }
    return out;
  }

  const login = (user: string, resource: string) => server.login(user, PW, { resource });

  async function requestList(c: ScriptedClient): Promise<string[]> {
    const id = c.id('bl');
    const result = await c.iq(`<iq type='get' id='${id}'><blocklist xmlns='${NS}'/></iq>`, { skip: true });
    assert.equal(result.attrs.type, 'result', result.toString());
    const list = result.getChild('blocklist', NS);
    assert.ok(list, 'a <blocklist/> in the result');
    return list.getChildElements().map((item) => item.attrs.jid as string);
  }

  async function block(c: ScriptedClient, jids: string[]): Promise<void> {
    const id = c.id('block');
    c.send(`<iq type='set' id='${id}'><block xmlns='${NS}'>${items(jids)}</block></iq>`);
    await c.expect(`<iq type='result' id='${id}'/>`, { skip: true });
  }

  async function unblock(c: ScriptedClient, jids: string[]): Promise<void> {
    const id = c.id('unblock');
    c.send(`<iq type='set' id='${id}'><unblock xmlns='${NS}'>${items(jids)}</unblock></iq>`);
    await c.expect(`<iq type='result' id='${id}'/>`, { skip: true });
  }

  /** A message from `from` reaches `to` (addressed to `address`). */
  async function delivered(from: ScriptedClient, to: ScriptedClient, address: string): Promise<void> {
    const id = from.id('ok');
    from.send(`<message to='${address}' type='chat' id='${id}'><body>hello</body></message>`);
    await to.expect(`<message from='${from.jid}' id='${id}'><body>hello</body></message>`, { skip: true });
  }

  it('advertises urn:xmpp:blocking', async () => {
    const [alice] = await users('alice');
    const a = await login(alice, 'one');
    const info = await a.iq(`<iq type='get' id='d1' to='${server.domain}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`);
    assert.ok(info.getChild('query')?.getChildren('feature').some((f) => f.attrs.var === NS), info.toString());
    await a.close();
  });

  it('returns the list, pushes changes to the resources that requested it, unblocks all', async () => {
    const [alice, bob] = await users('alice', 'bob');
    const one = await login(alice, 'one');
    const two = await login(alice, 'two');
    const three = await login(alice, 'three'); // never asks for the list: no pushes
    assert.deepEqual(await requestList(one), []);
    assert.deepEqual(await requestList(two), []);

    await block(one, [bob, `${OTHER}`, `carol@${OTHER}/Phone`]);
    const push = `<iq type='set' to='{{any}}'><block xmlns='${NS}'>${items([bob, OTHER, `carol@${OTHER}/Phone`])}</block></iq>`;
    const p1 = await one.expect(push);
    const p2 = await two.expect(push);
    assert.equal(p1.attrs.to, one.jid);
    assert.equal(p2.attrs.to, two.jid);
    await three.expectNothing(200);
    // Clients acknowledge pushes; the server takes the result quietly.
    one.send(`<iq type='result' id='${p1.attrs.id}'/>`);
    assert.deepEqual((await requestList(three)).sort(), [bob, `carol@${OTHER}/Phone`, OTHER].sort());

    await unblock(two, [OTHER]);
    for (const c of [one, two, three]) await c.expect(`<iq type='set'><unblock xmlns='${NS}'>${items([OTHER])}</unblock></iq>`);
    assert.deepEqual((await requestList(one)).sort(), [bob, `carol@${OTHER}/Phone`].sort());

    // Unblock all: an empty <unblock/>, pushed as such.
    const id = two.id('all');
    two.send(`<iq type='set' id='${id}'><unblock xmlns='${NS}'/></iq>`);
    await two.expect(`<iq type='result' id='${id}'/>`);
    for (const c of [one, two, three]) {
      const p = await c.expect(`<iq type='set'><unblock xmlns='${NS}'/></iq>`);
      assert.equal(p.getChild('unblock')?.getChildElements().length, 0);
    }
    assert.deepEqual(await requestList(one), []);
    for (const c of [one, two, three]) await c.close();
  });

  it('answers bad commands with bad-request and jid-malformed', async () => {
    const [alice] = await users('alice');
    const a = await login(alice, 'one');
    await requestList(a);
    a.send(`<iq type='set' id='e1'><block xmlns='${NS}'/></iq>`);
    await a.expect(`<iq type='error' id='e1'><error type='modify'><bad-request xmlns='${NS_STANZAS}'/></error></iq>`);
    a.send(`<iq type='set' id='e2'><block xmlns='${NS}'><item/></block></iq>`);
    await a.expect(`<iq type='error' id='e2'><error type='modify'><bad-request xmlns='${NS_STANZAS}'/></error></iq>`);
    a.send(`<iq type='set' id='e3'><block xmlns='${NS}'><item jid='bad@@jid'/></block></iq>`);
    await a.expect(`<iq type='error' id='e3'><error type='modify'><jid-malformed xmlns='${NS_STANZAS}'/></error></iq>`);
    a.send(`<iq type='set' id='e4'><unblock xmlns='${NS}'><item jid='@nope'/></unblock></iq>`);
    await a.expect(`<iq type='error' id='e4'><error type='modify'><jid-malformed xmlns='${NS_STANZAS}'/></error></iq>`);
    // At most max_items (5 here) JIDs, checked before anything is stored.
    a.send(`<iq type='set' id='e6'><block xmlns='${NS}'>${items(['a@x', 'b@x', 'c@x', 'd@x', 'e@x', 'f@x'])}</block></iq>`);
    await a.expect(`<iq type='error' id='e6'><error><policy-violation xmlns='${NS_STANZAS}'/></error></iq>`);
    // Nothing changed, nothing was pushed.
    await a.expectNothing(200);
    assert.deepEqual(await requestList(a), []);
    // The list is the user's own business: not to be read or changed through someone else.
    a.send(`<iq type='get' id='e5' to='bob@${server.domain}'><blocklist xmlns='${NS}'/></iq>`);
    await a.expect(`<iq type='error' id='e5'><error><service-unavailable xmlns='${NS_STANZAS}'/></error></iq>`);
    await a.close();
  });

  it('stops every stanza kind from a blocked JID', async () => {
    const [alice, bob] = await users('alice', 'bob');
    const a = await login(alice, 'one');
    const b = await login(bob, 'phone');
    a.send('<presence/>');
    b.send('<presence/>');
    await delivered(b, a, a.jid!);
    await delivered(b, a, alice);
    a.clear();
    b.clear();

    await block(a, [bob]);

    // Messages (to the full and the bare JID): service-unavailable, as if offline.
    b.send(`<message to='${a.jid}' type='chat' id='m1'><body>hi</body></message>`);
    await b.expect(unavailable('message', 'm1', a.jid));
    b.send(`<message to='${alice}' id='m2'><body>hi</body></message>`);
    await b.expect(unavailable('message', 'm2'));
    // Headlines and errors: dropped without an answer.
    b.send(`<message to='${a.jid}' type='headline' id='m3'><body>news</body></message>`);
    b.send(`<message to='${a.jid}' type='error' id='m4'><error type='cancel'><gone xmlns='${NS_STANZAS}'/></error></message>`);
    // Presence of any kind: dropped silently.
    b.send(`<presence to='${a.jid}' id='p1'/>`);
    b.send(`<presence to='${alice}' type='subscribe' id='p2'/>`);
    b.send(`<presence to='${alice}' type='probe' id='p3'/>`);
    // IQ get and set: service-unavailable; results and errors: dropped.
    b.send(`<iq to='${a.jid}' type='get' id='i1'><query xmlns='jabber:iq:version'/></iq>`);
    await b.expect(unavailable('iq', 'i1', a.jid), { skip: false });
    b.send(`<iq to='${a.jid}' type='set' id='i2'><query xmlns='urn:example'/></iq>`);
    await b.expect(unavailable('iq', 'i2', a.jid));
    b.send(`<iq to='${alice}' type='get' id='i3'><vCard xmlns='vcard-temp'/></iq>`);
    await b.expect(unavailable('iq', 'i3', alice));
    b.send(`<iq to='${a.jid}' type='result' id='i4'/>`);
    await a.expectNothing(300);
    await b.expectNothing(100);

    // Other resources of bob are blocked too (bare JID item); others are not.
    const [carol] = await users('carol');
    const c = await login(carol, 'x');
    await delivered(c, a, a.jid!);
    await c.close();
    await a.close();
    await b.close();
  });

  it('refuses every stanza kind from the user to a blocked JID', async () => {
    const [alice, bob] = await users('alice', 'bob');
    const a = await login(alice, 'one');
    const b = await login(bob, 'phone');
    a.send('<presence/>');
    b.send('<presence/>');
    await block(a, [bob]);
    await new Promise((r) => setTimeout(r, 100));
    a.clear();
    b.clear();

    a.send(`<message to='${b.jid}' type='chat' id='m1'><body>hi</body></message>`);
    await a.expect(blocked('message', 'm1', b.jid));
    a.send(`<message to='${bob}' id='m2'><body>hi</body></message>`);
    await a.expect(blocked('message', 'm2', bob));
    a.send(`<presence to='${b.jid}' id='p1'><show>dnd</show></presence>`);
    await a.expect(blocked('presence', 'p1', b.jid));
    a.send(`<presence to='${bob}' type='subscribe' id='p2'/>`);
    await a.expect(blocked('presence', 'p2', bob));
    a.send(`<iq to='${b.jid}' type='get' id='i1'><ping xmlns='urn:xmpp:ping'/></iq>`);
    await a.expect(blocked('iq', 'i1', b.jid));
    a.send(`<iq to='${bob}' type='get' id='i2'><vCard xmlns='vcard-temp'/></iq>`);
    await a.expect(blocked('iq', 'i2', bob));
    // Answers are not answered.
    a.send(`<iq to='${b.jid}' type='result' id='i3'/>`);
    a.send(`<message to='${b.jid}' type='error' id='m3'><error type='cancel'><gone xmlns='${NS_STANZAS}'/></error></message>`);
    await a.expectNothing(300);
    await b.expectNothing(100);

    // The user's own resources and server are never blocked, even with the own domain on the list.
    const two = await login(alice, 'two');
    await block(a, [server.domain]);
    await delivered(a, two, two.jid!);
    await delivered(two, a, a.jid!);
    const ping = await a.iq(`<iq to='${server.domain}' type='get' id='sp'><ping xmlns='urn:xmpp:ping'/></iq>`);
    assert.equal(ping.attrs.type, 'result', ping.toString());
    const [carol] = await users('carol');
    a.send(`<message to='${carol}' type='chat' id='m4'><body>hi</body></message>`);
    await a.expect(blocked('message', 'm4', carol));
    for (const c of [a, b, two]) await c.close();
  });

  it('matches domain, bare and full JIDs as XEP-0191 §6 says', async () => {
    const [alice, bob, carol, dave] = await users('alice', 'bob', `carol@${OTHER}`, `dave@${OTHER}`);
    const a = await login(alice, 'one');
    const phone = await login(bob, 'phone');
    const laptop = await login(bob, 'laptop');
    const c = await login(carol, 'x');
    const d = await login(dave, 'y');

    // A full JID blocks only that resource.
    await block(a, [`${bob}/phone`]);
    phone.send(`<message to='${a.jid}' type='chat' id='f1'><body>1</body></message>`);
    await phone.expect(unavailable('message', 'f1'));
    await delivered(laptop, a, a.jid!);
    a.send(`<message to='${phone.jid}' type='chat' id='f2'><body>2</body></message>`);
    await a.expect(blocked('message', 'f2', phone.jid));
    await delivered(a, laptop, laptop.jid!);

    // A domain blocks every JID at it, and the domain itself.
    await block(a, [OTHER]);
    for (const [client, id] of [[c, 'd1'], [d, 'd2']] as const) {
      client.send(`<message to='${a.jid}' type='chat' id='${id}'><body>x</body></message>`);
      await client.expect(unavailable('message', id));
    }
    a.send(`<message to='${dave}' type='chat' id='d3'><body>x</body></message>`);
    await a.expect(blocked('message', 'd3', dave));
    a.send(`<iq to='${OTHER}' type='get' id='d4'><ping xmlns='urn:xmpp:ping'/></iq>`);
    await a.expect(blocked('iq', 'd4', OTHER));

    // Unblocking the domain does not unblock what is listed on its own.
    await block(a, [carol]);
    await unblock(a, [OTHER]);
    await delivered(d, a, a.jid!);
    c.send(`<message to='${a.jid}' type='chat' id='d5'><body>x</body></message>`);
    await c.expect(unavailable('message', 'd5'));
    for (const x of [a, phone, laptop, c, d]) await x.close();
  });

  it('keeps the list across sessions and applies it while the user is offline', async () => {
    const [alice, bob] = await users('alice', 'bob');
    const a = await login(alice, 'one');
    await block(a, [bob]);
    await a.close();

    const b = await login(bob, 'phone');
    b.send(`<message to='${alice}' type='chat' id='o1'><body>are you there?</body></message>`);
    await b.expect(unavailable('message', 'o1'));
    b.send(`<iq to='${alice}' type='get' id='o2'><vCard xmlns='vcard-temp'/></iq>`);
    await b.expect(unavailable('iq', 'o2'));

    const again = await login(alice, 'two');
    assert.deepEqual(await requestList(again), [bob]);
    again.send('<presence/>');
    // Nothing bob sent while alice was away was kept for her.
    await new Promise((r) => setTimeout(r, 300));
    const got = again.clear().filter((e) => e.name === 'message');
    assert.deepEqual(got.map((e) => e.toString()), []);
    await unblock(again, [bob]);
    await delivered(b, again, again.jid!);
    await b.close();
    await again.close();
  });

  describe('presence', () => {
    /** Mutual subscription, written straight into storage. */
    async function subscribe(x: string, y: string): Promise<void> {
      const roster = server.server.storage.roster;
      const ref = (jid: string) => ({ username: jid.split('@')[0], domain: jid.split('@')[1] });
      const item = (jid: string) => ({ jid, subscription: 'both' as const, askOut: false, askIn: false, groups: [] });
      await roster.put(ref(x), item(y));
      await roster.put(ref(y), item(x));
    }

    it('sends unavailable presence on block and the current presence on unblock', async () => {
      const [alice, bob] = await users('alice', 'bob');
      await subscribe(alice, bob);
      const one = await login(alice, 'one');
      const two = await login(alice, 'two');
      const b = await login(bob, 'phone');
      b.send('<presence/>');
      one.send('<presence><show>away</show></presence>');
      await b.expect(`<presence from='${one.jid}'><show>away</show></presence>`, { skip: true });
      two.send('<presence><status>on call</status></presence>');
      await b.expect(`<presence from='${two.jid}'><status>on call</status></presence>`, { skip: true });
      await one.expect(`<presence from='${b.jid}'/>`, { skip: true });
      await new Promise((r) => setTimeout(r, 100));
      b.clear();
      one.clear();
      two.clear();

      await block(one, [bob]);
      const gone = [await b.next(), await b.next()].map((p) => ({ from: p.attrs.from, type: p.attrs.type, name: p.name }));
      assert.deepEqual(gone.sort((x, y) => x.from.localeCompare(y.from)), [
        { from: one.jid, type: 'unavailable', name: 'presence' },
        { from: two.jid, type: 'unavailable', name: 'presence' },
      ]);

      // While blocked, presence goes neither way.
      one.send('<presence><show>dnd</show></presence>');
      b.send('<presence><show>chat</show></presence>');
      await new Promise((r) => setTimeout(r, 300));
      assert.ok(!b.clear().some((e) => e.attrs.from?.startsWith(alice)), 'no presence from alice');
      assert.ok(!one.clear().some((e) => e.attrs.from?.startsWith(bob)), 'no presence from bob');
      assert.ok(!two.clear().some((e) => e.attrs.from?.startsWith(bob)), 'no presence from bob');

      await unblock(one, [bob]);
      const back = [await b.next(), await b.next()];
      const byFrom = new Map(back.map((p) => [String(p.attrs.from), p]));
      assert.equal(byFrom.get(one.jid!)?.getChildText('show'), 'dnd');
      assert.equal(byFrom.get(two.jid!)?.getChildText('status'), 'on call');
      assert.equal(byFrom.get(one.jid!)?.attrs.type, undefined);

      // And bob's presence flows again.
      b.send('<presence><show>xa</show></presence>');
      await one.expect(`<presence from='${b.jid}'><show>xa</show></presence>`, { skip: true });
      for (const c of [one, two, b]) await c.close();
    });

    it('holds for presence broadcast by the server, across the hosts of the server', async () => {
      const [alice, carol] = await users('alice', `carol@${OTHER}`);
      await subscribe(alice, carol);
      const c = await login(carol, 'x');
      await block(c, [alice]);
      const a = await login(alice, 'one');
      a.send('<presence/>');
      await new Promise((r) => setTimeout(r, 100));
      c.send('<presence><show>away</show></presence>');
      await new Promise((r) => setTimeout(r, 300));
      // Neither carol's broadcast (nor her answer to alice's probe) reached alice, and
      // alice's broadcast did not reach carol.
      assert.ok(!a.clear().some((e) => e.attrs.from?.startsWith(carol)), 'no presence from carol');
      assert.ok(!c.clear().some((e) => e.attrs.from?.startsWith(alice)), 'no presence from alice');
      await unblock(c, [alice]);
      await a.expect(`<presence from='${c.jid}'><show>away</show></presence>`, { skip: true });
      await a.close();
      await c.close();
    });

    it('sends nothing to a contact who does not receive the presence', async () => {
      const [alice, bob] = await users('alice', 'bob');
      const a = await login(alice, 'one');
      const b = await login(bob, 'phone');
      a.send('<presence/>');
      b.send('<presence/>');
      await new Promise((r) => setTimeout(r, 100));
      b.clear();
      await block(a, [bob]);
      await b.expectNothing(300);
      await unblock(a, [bob]);
      await b.expectNothing(300);
      await a.close();
      await b.close();
    });
  });
});
