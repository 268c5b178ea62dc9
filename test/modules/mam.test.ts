/**
 * XEP-0313 message archive management on both storage backends: both sides of a
 * conversation archived (also for an offline recipient), every query field, XEP-0059 paging
 * through many pages in both directions, the last page, flipped pages, preferences, metadata,
 * the errors, the page-size cap, a database that is gone, and retention.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import type { Element } from 'ltx';
import { startTestServer, type ScriptedClient, type TestServer } from '../support/index.ts';
import { assertExact, iqError } from './exact.ts';

const MAM = 'urn:xmpp:mam:2';
const RSM = 'http://jabber.org/protocol/rsm';
const FWD = 'urn:xmpp:forward:0';
const DELAY = 'urn:xmpp:delay';
const SID = 'urn:xmpp:sid:0';
const XDATA = 'jabber:x:data';
const STAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/'/g, '&apos;');

/** A submitted MAM form with these fields (a list gives several values). */
function form(fields: Record<string, string | string[]>): string {
  const rendered = Object.entries(fields).map(([name, value]) => {
    const values = (Array.isArray(value) ? value : [value]).map((v) => `<value>${escape(v)}</value>`).join('');
    return `<field var='${name}'>${values}</field>`;
  });
  return `<x xmlns='${XDATA}' type='submit'><field var='FORM_TYPE' type='hidden'><value>${MAM}</value></field>${rendered.join('')}</x>`;
}

/** An RSM <set/>. */
function rsm(options: { max?: number; after?: string; before?: string }): string {
  const parts: string[] = [];
  if (options.max !== undefined) parts.push(`<max>${options.max}</max>`);
  if (options.after !== undefined) parts.push(`<after>${options.after}</after>`);
  if (options.before !== undefined) parts.push(options.before === '' ? '<before/>' : `<before>${options.before}</before>`);
  return `<set xmlns='${RSM}'>${parts.join('')}</set>`;
}

interface Outcome {
  /** The result <message/>s, in the order received. */
  results: Element[];
  /** The IQ result (or error). */
  iq: Element;
}

let queries = 0;

/** Sends a MAM query (`inner` inside <query/>) and collects the results up to the IQ answer. */
async function query(client: ScriptedClient, inner = '', options: { queryid?: string | null } = {}): Promise<Outcome> {
  const id = `q${++queries}`;
  const queryid = options.queryid === null ? '' : ` queryid='${options.queryid ?? id}'`;
  client.send(`<iq type='set' id='${id}'><query xmlns='${MAM}'${queryid}>${inner}</query></iq>`);
  const results: Element[] = [];
  for (;;) {
    const element = await client.next();
    if (element.name === 'iq' && element.attrs.id === id) return { results, iq: element };
    if (element.name === 'message' && element.getChild('result', MAM) !== undefined) results.push(element);
  }
}

/** A query that must succeed: its results and its <fin/>. */
async function fetch(client: ScriptedClient, inner = ''): Promise<{ results: Element[]; fin: Element; ids: string[]; bodies: string[] }> {
  const { results, iq } = await query(client, inner);
  assert.equal(iq.attrs.type, 'result', `query failed: ${iq.toString()}`);
  const fin = iq.getChild('fin', MAM);
  assert.ok(fin, `no <fin/>: ${iq.toString()}`);
  return { results, fin, ids: results.map(resultId), bodies: results.map(bodyOf) };
}

const resultId = (message: Element) => message.getChild('result', MAM)!.attrs.id as string;
const forwarded = (message: Element) => message.getChild('result', MAM)!.getChild('forwarded', FWD)!;
const bodyOf = (message: Element) => forwarded(message).getChild('message')!.getChildText('body') ?? '';
const stampOf = (message: Element) => Date.parse(forwarded(message).getChild('delay', DELAY)!.attrs.stamp);

function setOf(fin: Element): { first?: string; index?: string; last?: string; count: number } {
  const set = fin.getChild('set', RSM)!;
  return {
    first: set.getChildText('first') ?? undefined,
    index: set.getChild('first')?.attrs.index,
    last: set.getChildText('last') ?? undefined,
    count: Number(set.getChildText('count')),
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

for (const storage of ['sqlite', 'postgres'] as const) {
  describe(`message archive management (${storage})`, () => {
    let server: TestServer;
    let counter = 0;

    before(async () => {
      server = await startTestServer({
        storage,
        toml: `
          [modules.mam]
          default_page_size = 20
          max_page_size = 50
          write_timeout = 1
          [modules.offline]
          max_messages = 2
        `,
      });
    });
    after(() => server?.stop());

    /** A fresh account, logged in with one resource; `online` sends available presence. */
    async function user(name: string, options: { online?: boolean; resource?: string } = {}): Promise<{ jid: string; client: ScriptedClient }> {
      const account = await server.addUser(`${name}${++counter}`, 'secret');
      const client = await server.login(account.jid, 'secret', { resource: options.resource ?? 'r' });
      if (options.online !== false) {
        client.send('<presence/>');
        await client.expect(`<presence from='${client.jid}'/>`, { skip: true });
      }
      return { jid: account.jid, client };
    }

    /** alice sends `count` chat messages to `to` with bodies `${prefix}${n}`, and they are all archived when this resolves. */
    async function sendMany(from: ScriptedClient, to: string, count: number, prefix = 'm'): Promise<void> {
      for (let n = 1; n <= count; n++) from.send(`<message to='${to}' type='chat' id='${prefix}${n}'><body>${prefix}${n}</body></message>`);
      // The sender's stanzas are handled in order: this answer comes after every write committed.
      const ping = from.id('ping');
      await from.iq(`<iq type='get' id='${ping}'><ping xmlns='urn:xmpp:ping'/></iq>`, { skip: true, timeout: 30_000 });
    }

    it('advertises the archive and stanza ids on accounts', async () => {
      const alice = await user('alice', { online: false });
      const info = await alice.client.iq(`<iq type='get' id='d1' to='${alice.jid}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`);
      const features = info.getChild('query')!.getChildren('feature').map((f) => f.attrs.var);
      for (const feature of [MAM, `${MAM}#extended`, SID]) assert.ok(features.includes(feature), `${feature} in ${info.toString()}`);
    });

    it('returns the query form, with the extended and full-text fields', async () => {
      const alice = await user('alice', { online: false });
      const answer = await alice.client.iq(`<iq type='get' id='f1'><query xmlns='${MAM}'/></iq>`);
      assertExact(answer, `<iq type='result' id='f1' to='${alice.client.jid}'><query xmlns='${MAM}'><x xmlns='${XDATA}' type='form'>
        <field var='FORM_TYPE' type='hidden'><value>${MAM}</value></field>
        <field var='with' type='jid-single'/>
        <field var='start' type='text-single'/>
        <field var='end' type='text-single'/>
        <field var='before-id' type='text-single'/>
        <field var='after-id' type='text-single'/>
        <field var='ids' type='list-multi'><validate xmlns='http://jabber.org/protocol/xdata-validate' datatype='xs:string'><open/></validate></field>
        <field var='full-text-search' type='text-single'/>
      </x></query></iq>`);
    });

    it('archives both sides of a conversation, each under the id its archive assigned', async () => {
      const alice = await user('alice', { resource: 'desk' });
      const bob = await user('bob', { resource: 'phone' });
      alice.client.send(`<message to='${bob.jid}' type='chat' id='hello'><body>Hello Bob</body><origin-id xmlns='${SID}' id='origin-1'/></message>`);
      const got = await bob.client.expect("<message id='hello'/>");
      assertExact(got, `<message from='${alice.jid}/desk' to='${bob.jid}' type='chat' id='hello'><body>Hello Bob</body><origin-id xmlns='${SID}' id='origin-1'/><stanza-id xmlns='${SID}' by='${bob.jid}' id='{{any}}'/></message>`);
      const bobsId = got.getChild('stanza-id', SID)!.attrs.id;

      const sent = await fetch(alice.client);
      assert.equal(sent.results.length, 1);
      const alicesId = resultId(sent.results[0]);
      assert.notEqual(alicesId, bobsId);
      assertExact(sent.results[0], `<message from='${alice.jid}' to='${alice.jid}/desk' id='{{any}}'><result xmlns='${MAM}' queryid='{{any}}' id='${alicesId}'><forwarded xmlns='${FWD}'>
        <delay xmlns='${DELAY}' stamp='{{any}}'/>
        <message xmlns='jabber:client' from='${alice.jid}/desk' to='${bob.jid}' type='chat' id='hello'><body>Hello Bob</body><origin-id xmlns='${SID}' id='origin-1'/><stanza-id xmlns='${SID}' by='${alice.jid}' id='${alicesId}'/></message>
      </forwarded></result></message>`);
      assert.match(forwarded(sent.results[0]).getChild('delay', DELAY)!.attrs.stamp, STAMP);
      assertExact(sent.fin, `<fin xmlns='${MAM}' complete='true'><set xmlns='${RSM}'><first index='0'>${alicesId}</first><last>${alicesId}</last><count>1</count></set></fin>`);

      const received = await fetch(bob.client);
      assert.deepEqual(received.ids, [bobsId]);
      assertExact(forwarded(received.results[0]).getChild('message')!, `<message xmlns='jabber:client' from='${alice.jid}/desk' to='${bob.jid}' type='chat' id='hello'><body>Hello Bob</body><origin-id xmlns='${SID}' id='origin-1'/><stanza-id xmlns='${SID}' by='${bob.jid}' id='${bobsId}'/></message>`);
    });

    it('archives for an offline recipient before offline storage, which delivers the same id', async () => {
      const alice = await user('alice');
      const bob = await user('bob', { online: false });
      await bob.client.close();
      alice.client.send(`<message to='${bob.jid}' type='chat' id='while-away'><body>Are you there?</body></message>`);
      await alice.client.expectNothing(300);

      const back = await server.login(bob.jid, 'secret', { resource: 'again' });
      back.send('<presence/>');
      const got = await back.expect("<message id='while-away'/>", { skip: true });
      assertExact(got, `<message from='${alice.jid}/r' to='${bob.jid}' type='chat' id='while-away'><body>Are you there?</body><stanza-id xmlns='${SID}' by='${bob.jid}' id='{{any}}'/><delay xmlns='${DELAY}' from='localhost' stamp='{{any}}'>Offline storage</delay></message>`);
      const archived = await fetch(back);
      assert.deepEqual(archived.ids, [got.getChild('stanza-id', SID)!.attrs.id]);
      assert.deepEqual((await fetch(alice.client)).bodies, ['Are you there?']);
    });

    it('archives also what offline storage refuses when full; the sender is told', async () => {
      const alice = await user('alice');
      const bob = await user('bob', { online: false });
      await bob.client.close();
      for (let n = 1; n <= 3; n++) alice.client.send(`<message to='${bob.jid}' type='chat' id='full${n}'><body>full${n}</body></message>`);
      await alice.client.expect(`<message type='error' id='full3'><error type='wait'><resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`);
      const back = await server.login(bob.jid, 'secret', { resource: 'again' });
      assert.deepEqual((await fetch(back)).bodies, ['full1', 'full2', 'full3']);
    });

    it('keeps only conversation messages', async () => {
      const alice = await user('alice');
      const bob = await user('bob');
      const to = bob.jid;
      alice.client.send(`<message to='${to}' type='headline' id='n1'><body>headline</body></message>`);
      alice.client.send(`<message to='${to}' type='chat' id='n2'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`);
      alice.client.send(`<message to='${to}' type='chat' id='n3'><body>private</body><no-store xmlns='urn:xmpp:hints'/></message>`);
      alice.client.send(`<message to='${to}' type='chat' id='n4'><body>not even here</body><no-permanent-store xmlns='urn:xmpp:hints'/></message>`);
      alice.client.send(`<message to='${to}' type='chat' id='n5'><received xmlns='urn:xmpp:receipts' id='x'/></message>`);
      alice.client.send(`<message to='${to}' type='chat' id='y1'><encrypted xmlns='eu.siacs.conversations.axolotl'/><store xmlns='urn:xmpp:hints'/></message>`);
      alice.client.send(`<message to='${to}' type='chat' id='y2'><reactions xmlns='urn:xmpp:reactions:0' id='n2'><reaction>👍</reaction></reactions></message>`);
      alice.client.send(`<message to='${to}' id='y3'><subject>s</subject><body>normal</body></message>`);
      alice.client.send(`<message to='${to}' type='whatever' id='y4'><body>unknown type is normal</body></message>`);
      await sendMany(alice.client, to, 0);
      const kept = (r: { results: Element[] }) => r.results.map((m) => forwarded(m).getChild('message')!.attrs.id);
      assert.deepEqual(kept(await fetch(alice.client)), ['y1', 'y2', 'y3', 'y4']);
      assert.deepEqual(kept(await fetch(bob.client)), ['y1', 'y2', 'y3', 'y4']);
    });

    it('archives a message to oneself once, and what the user sends even when it bounces', async () => {
      const alice = await user('alice', { resource: 'desk' });
      const other = await server.login(alice.jid, 'secret', { resource: 'phone' });
      alice.client.send(`<message to='${alice.jid}/phone' type='chat' id='self'><body>note to self</body></message>`);
      await other.expect("<message id='self'/>", { skip: true });
      alice.client.send(`<message to='nobody@localhost' type='chat' id='nobody'><body>hello?</body></message>`);
      await alice.client.expect("<message type='error' id='nobody'/>", { skip: true });
      const archive = await fetch(alice.client);
      assert.deepEqual(archive.bodies, ['note to self', 'hello?']);
      const self = await fetch(alice.client, form({ with: alice.jid }));
      assert.deepEqual(self.bodies, ['note to self']);
    });

    it('filters by with (bare or full JID), start and end', async () => {
      const alice = await user('alice');
      const bob = await user('bob', { resource: 'phone' });
      const carol = await user('carol');
      await sendMany(alice.client, bob.jid, 3, 'tob');
      await sleep(15);
      await sendMany(alice.client, carol.jid, 2, 'toc');
      await sleep(15);
      bob.client.send(`<message to='${alice.jid}' type='chat' id='fromb'><body>fromb</body></message>`);
      await alice.client.expect("<message id='fromb'/>", { skip: true });

      const all = await fetch(alice.client);
      assert.deepEqual(all.bodies, ['tob1', 'tob2', 'tob3', 'toc1', 'toc2', 'fromb']);
      assert.deepEqual((await fetch(alice.client, form({ with: bob.jid }))).bodies, ['tob1', 'tob2', 'tob3', 'fromb']);
      assert.deepEqual((await fetch(alice.client, form({ with: `${bob.jid}/phone` }))).bodies, ['fromb']);
      assert.deepEqual((await fetch(alice.client, form({ with: carol.jid }))).bodies, ['toc1', 'toc2']);

      // Bounds are inclusive, and fractional and zoned times are understood.
      const stamps = all.results.map(stampOf);
      const at = (ms: number) => new Date(ms).toISOString();
      const expected = (from: number, to: number) => all.bodies.filter((_, i) => stamps[i] >= from && stamps[i] <= to);
      assert.deepEqual((await fetch(alice.client, form({ start: at(stamps[3]) }))).bodies, expected(stamps[3], Infinity));
      assert.deepEqual((await fetch(alice.client, form({ end: at(stamps[4]) }))).bodies, expected(0, stamps[4]));
      assert.deepEqual((await fetch(alice.client, form({ start: at(stamps[3]), end: at(stamps[4]) }))).bodies, ['toc1', 'toc2']);
      assert.deepEqual((await fetch(alice.client, form({ start: at(stamps[3]), end: at(stamps[4]), with: bob.jid }))).bodies, []);
      const zoned = new Date(stamps[5] + 2 * 3600_000).toISOString().replace('Z', '+02:00');
      assert.deepEqual((await fetch(alice.client, form({ start: zoned }))).bodies, expected(stamps[5], Infinity));
      const micro = at(stamps[5]).replace('Z', '001Z');
      assert.deepEqual((await fetch(alice.client, form({ start: micro }))).bodies, expected(stamps[5] + 1, Infinity));
      assert.deepEqual((await fetch(alice.client, form({ start: '2100-01-01T00:00:00Z' }))).bodies, []);
    });

    it('filters by after-id, before-id and ids', async () => {
      const alice = await user('alice');
      const bob = await user('bob');
      await sendMany(alice.client, bob.jid, 6);
      const { ids } = await fetch(alice.client);
      assert.equal(ids.length, 6);
      assert.deepEqual((await fetch(alice.client, form({ 'after-id': ids[1] }))).ids, ids.slice(2));
      assert.deepEqual((await fetch(alice.client, form({ 'before-id': ids[3] }))).ids, ids.slice(0, 3));
      assert.deepEqual((await fetch(alice.client, form({ 'after-id': ids[0], 'before-id': ids[5] }))).ids, ids.slice(1, 5));
      assert.deepEqual((await fetch(alice.client, form({ ids: [ids[4], ids[1]] }))).ids, [ids[1], ids[4]]);
      // before-id is a bound, not a direction: the first page before it, oldest first.
      const bounded = await fetch(alice.client, form({ 'before-id': ids[5] }) + rsm({ max: 2 }));
      assert.deepEqual(bounded.ids, ids.slice(0, 2));
      assert.equal(bounded.fin.attrs.complete, 'false');
      // Form and RSM bounds together: the narrower applies.
      assert.deepEqual((await fetch(alice.client, form({ 'after-id': ids[0] }) + rsm({ after: ids[2] }))).ids, ids.slice(3));
      assert.deepEqual((await fetch(alice.client, form({ 'after-id': ids[3] }) + rsm({ after: ids[1] }))).ids, ids.slice(4));
      // Single-item retrieval of bob's copy works with bob's id only.
      const bobs = await fetch(bob.client);
      assert.deepEqual((await fetch(bob.client, form({ ids: bobs.ids[2] }))).bodies, ['m3']);
    });

    it('searches the full text of bodies', async () => {
      const alice = await user('alice');
      const bob = await user('bob');
      const bodies = ['Patient in bed 4 needs a Café', 'cafe order for ward 7', 'Bed 4 discharged', 'nothing here'];
      for (const [n, body] of bodies.entries()) alice.client.send(`<message to='${bob.jid}' type='chat' id='t${n}'><body>${body}</body></message>`);
      await sendMany(alice.client, bob.jid, 0);
      const search = async (text: string) => (await fetch(alice.client, form({ 'full-text-search': text }))).bodies;
      assert.deepEqual(await search('cafe'), [bodies[0], bodies[1]]);
      assert.deepEqual(await search('BED 4'), [bodies[0], bodies[2]]);
      assert.deepEqual(await search('bed ward'), []);
      assert.deepEqual(await search('ward'), [bodies[1]]);
      assert.deepEqual(await search('be'), []);
      // Combined with the other fields.
      const everything = await fetch(alice.client);
      assert.deepEqual((await fetch(alice.client, form({ 'full-text-search': 'bed', 'after-id': everything.ids[0] }))).bodies, [bodies[2]]);
      // Bob's archive has its own copies.
      assert.deepEqual((await fetch(bob.client, form({ 'full-text-search': 'discharged' }))).bodies, [bodies[2]]);
    });

    it('pages through 120 messages 25 at a time, forwards and backwards, with no gaps or duplicates', async () => {
      const alice = await user('alice');
      const bob = await user('bob');
      const started = performance.now();
      await sendMany(alice.client, bob.jid, 120);
      console.log(`120 messages archived on both sides in ${Math.round(performance.now() - started)} ms`);
      const expected = Array.from({ length: 120 }, (_, i) => `m${i + 1}`);

      const forwards: string[] = [];
      const forwardIds: string[] = [];
      const messageIds = new Set<string>();
      let after: string | undefined;
      for (let page = 0; ; page++) {
        const { fin, bodies, ids, results } = await fetch(alice.client, rsm({ max: 25, after }));
        for (const result of results) messageIds.add(result.attrs.id as string);
        const set = setOf(fin);
        assert.equal(set.count, 120);
        assert.equal(set.index, String(page * 25));
        assert.equal(set.first, ids[0]);
        assert.equal(set.last, ids[ids.length - 1]);
        forwards.push(...bodies);
        forwardIds.push(...ids);
        after = set.last;
        if (page < 4) {
          assert.equal(bodies.length, 25);
          assert.equal(fin.attrs.complete, 'false');
        } else {
          assert.equal(bodies.length, 20);
          assert.equal(fin.attrs.complete, 'true');
          break;
        }
      }
      assert.deepEqual(forwards, expected);
      assert.deepEqual([...forwardIds].sort(), forwardIds, 'ids sort as the messages were sent');
      assert.equal(messageIds.size, 120, 'every result message has an id of its own, across pages');

      const backwards: string[][] = [];
      let before = '';
      for (let page = 0; ; page++) {
        const { fin, bodies } = await fetch(alice.client, rsm({ max: 25, before }));
        const set = setOf(fin);
        assert.equal(set.count, 120);
        assert.equal(set.index, String(Math.max(0, 120 - (page + 1) * 25)));
        backwards.unshift(bodies);
        before = set.first!;
        if (page < 4) {
          assert.equal(bodies.length, 25);
          assert.equal(fin.attrs.complete, 'false');
        } else {
          assert.equal(bodies.length, 20);
          assert.equal(fin.attrs.complete, 'true');
          break;
        }
      }
      assert.deepEqual(backwards.flat(), expected);

      // Past the end: an empty page, complete, with the count and no first/last.
      const end = await fetch(alice.client, rsm({ max: 25, after: forwardIds[119] }));
      assertExact(end.fin, `<fin xmlns='${MAM}' complete='true'><set xmlns='${RSM}'><count>120</count></set></fin>`);
    });

    it('returns the last page for an empty <before/>, flips pages on request, caps <max/>', async () => {
      const alice = await user('alice');
      const bob = await user('bob');
      await sendMany(alice.client, bob.jid, 60);
      const last = await fetch(alice.client, rsm({ max: 5, before: '' }));
      assert.deepEqual(last.bodies, ['m56', 'm57', 'm58', 'm59', 'm60']);
      assert.equal(last.fin.attrs.complete, 'false');
      assert.equal(setOf(last.fin).index, '55');

      const flipped = await fetch(alice.client, rsm({ max: 5, before: '' }) + '<flip-page/>');
      assert.deepEqual(flipped.bodies, ['m60', 'm59', 'm58', 'm57', 'm56']);
      // The same page: first and last still name its oldest and newest message.
      assert.deepEqual(setOf(flipped.fin), setOf(last.fin));
      const flippedForward = await fetch(alice.client, rsm({ max: 3, after: last.ids[0] }) + '<flip-page/>');
      assert.deepEqual(flippedForward.bodies, ['m59', 'm58', 'm57']);

      // Without <max/>: the default page size; with a larger one: the maximum.
      const byDefault = await fetch(alice.client);
      assert.equal(byDefault.results.length, 20);
      assert.equal(byDefault.fin.attrs.complete, 'false');
      const capped = await fetch(alice.client, rsm({ max: 1000 }));
      assert.equal(capped.results.length, 50);
      assert.deepEqual(setOf(capped.fin).count, 60);
      // <max>0</max>: just the count.
      const counted = await fetch(alice.client, rsm({ max: 0 }));
      assert.equal(counted.results.length, 0);
      assertExact(counted.fin, `<fin xmlns='${MAM}' complete='false'><set xmlns='${RSM}'><count>60</count></set></fin>`);
    });

    it('answers the results with the query id, or without one when the query had none', async () => {
      const alice = await user('alice');
      const bob = await user('bob');
      await sendMany(alice.client, bob.jid, 1);
      const withId = await query(alice.client, '', { queryid: 'my-query' });
      assert.equal(withId.results[0].getChild('result', MAM)!.attrs.queryid, 'my-query');
      const without = await query(alice.client, '', { queryid: null });
      assert.equal(without.results[0].getChild('result', MAM)!.attrs.queryid, undefined);
    });

    it('refuses bad values with <bad-request/>, unknown fields with <feature-not-implemented/>', async () => {
      const alice = await user('alice');
      const bob = await user('bob');
      await sendMany(alice.client, bob.jid, 2);
      const refused = async (inner: string, condition: string, type: string) => {
        const { results, iq } = await query(alice.client, inner);
        assert.equal(results.length, 0);
        assertExact(iq, iqError({ id: iq.attrs.id, to: alice.client.jid, condition, type, text: '{{any}}' }));
      };
      const bad: Record<string, string | string[]>[] = [
        { start: 'yesterday' }, { start: '2024-02-30T00:00:00Z' }, { end: '2024-01-01T25:00:00Z' }, { end: '2024-01-01T10:00:00' },
        { with: 'not a jid@' }, { with: '@localhost' }, { 'after-id': '' }, { start: ['2024-01-01T00:00:00Z', '2024-01-02T00:00:00Z'] },
      ];
      for (const fields of bad) await refused(form(fields), 'bad-request', 'modify');
      await refused(`<x xmlns='${XDATA}' type='submit'><field var='FORM_TYPE'><value>urn:xmpp:mam:1</value></field></x>`, 'bad-request', 'modify');
      await refused(`<x xmlns='${XDATA}' type='form'/>`, 'bad-request', 'modify');
      await refused(rsm({ max: -1 }), 'bad-request', 'modify');
      await refused(`<set xmlns='${RSM}'><max>many</max></set>`, 'bad-request', 'modify');
      await refused(`<set xmlns='${RSM}'><after/></set>`, 'bad-request', 'modify');
      await refused(form({ 'include-groupchat': 'true' }), 'feature-not-implemented', 'cancel');
      await refused(`<set xmlns='${RSM}'><index>3</index></set>`, 'feature-not-implemented', 'cancel');
    });

    it('answers an id that is not in the archive with <item-not-found/>', async () => {
      const alice = await user('alice');
      const bob = await user('bob');
      await sendMany(alice.client, bob.jid, 2);
      const { ids } = await fetch(alice.client);
      const bobs = (await fetch(bob.client)).ids;
      const missing = async (inner: string) => {
        const { results, iq } = await query(alice.client, inner);
        assert.equal(results.length, 0);
        assertExact(iq, iqError({ id: iq.attrs.id, to: alice.client.jid, condition: 'item-not-found', type: 'cancel', text: '{{any}}' }));
      };
      await missing(rsm({ after: 'no-such-id' }));
      await missing(rsm({ before: 'no-such-id' }));
      await missing(form({ 'after-id': 'no-such-id' }));
      await missing(form({ 'before-id': bobs[0] })); // bob's id, not in alice's archive
      await missing(form({ ids: [ids[0], 'no-such-id'] }));
      await missing(form({ 'after-id': ids[1] }) + rsm({ after: 'no-such-id' }));
      await missing(form({ 'after-id': 'zzzzzzzzzzzzzzzzzzzzz' }) + rsm({ after: ids[0] }));
    });

    it('reads and sets preferences, and archives by them', async () => {
      const alice = await user('alice');
      const bob = await user('bob');
      const carol = await user('carol');
      const dave = await user('dave');
      const prefs = await alice.client.iq(`<iq type='get' id='p1'><prefs xmlns='${MAM}'/></iq>`);
      assertExact(prefs, `<iq type='result' id='p1' to='${alice.client.jid}'><prefs xmlns='${MAM}' default='always'><always/><never/></prefs></iq>`);

      const set = await alice.client.iq(`<iq type='set' id='p2'><prefs xmlns='${MAM}' default='never'><always><jid>${bob.jid}</jid></always><never><jid>${carol.jid}/r</jid></never></prefs></iq>`);
      assertExact(set, `<iq type='result' id='p2' to='${alice.client.jid}'><prefs xmlns='${MAM}' default='never'><always><jid>${bob.jid}</jid></always><never><jid>${carol.jid}/r</jid></never></prefs></iq>`);
      const again = await alice.client.iq(`<iq type='get' id='p3'><prefs xmlns='${MAM}'/></iq>`);
      assertExact(again, `<iq type='result' id='p3' to='${alice.client.jid}'><prefs xmlns='${MAM}' default='never'><always><jid>${bob.jid}</jid></always><never><jid>${carol.jid}/r</jid></never></prefs></iq>`);

      await sendMany(alice.client, bob.jid, 1, 'to-bob');
      await sendMany(alice.client, carol.jid, 1, 'to-carol');
      await sendMany(alice.client, dave.jid, 1, 'to-dave');
      carol.client.send(`<message to='${alice.jid}' type='chat' id='c'><body>from-carol</body></message>`);
      await alice.client.expect("<message id='c'/>", { skip: true });
      bob.client.send(`<message to='${alice.jid}' type='chat' id='b'><body>from-bob</body></message>`);
      await alice.client.expect("<message id='b'/>", { skip: true });
      assert.deepEqual((await fetch(alice.client)).bodies, ['to-bob1', 'from-bob']);
      // Only alice's archive follows alice's preferences.
      assert.deepEqual((await fetch(carol.client)).bodies, ['to-carol1', 'from-carol']);

      // A missing default keeps the current one; 'roster' archives roster contacts only.
      await alice.client.iq(`<iq type='set' id='p4'><prefs xmlns='${MAM}' default='roster'/></iq>`);
      await alice.client.iq(`<iq type='set' id='r1'><query xmlns='jabber:iq:roster'><item jid='${dave.jid}'/></query></iq>`, { skip: true });
      await sendMany(alice.client, dave.jid, 1, 'roster-dave');
      await sendMany(alice.client, carol.jid, 1, 'roster-carol');
      assert.deepEqual((await fetch(alice.client)).bodies, ['to-bob1', 'from-bob', 'roster-dave1']);

      const bad = await alice.client.iq(`<iq type='set' id='p5'><prefs xmlns='${MAM}' default='sometimes'/></iq>`);
      assertExact(bad, iqError({ id: 'p5', to: alice.client.jid, condition: 'bad-request', type: 'modify', text: '{{any}}' }));
      const badJid = await alice.client.iq(`<iq type='set' id='p6'><prefs xmlns='${MAM}' default='always'><never><jid>@@</jid></never></prefs></iq>`);
      assertExact(badJid, iqError({ id: 'p6', to: alice.client.jid, condition: 'bad-request', type: 'modify', text: '{{any}}' }));
    });

    it('describes the archive: first and last message', async () => {
      const alice = await user('alice');
      const bob = await user('bob');
      const empty = await alice.client.iq(`<iq type='get' id='meta1'><metadata xmlns='${MAM}'/></iq>`);
      assertExact(empty, `<iq type='result' id='meta1' to='${alice.client.jid}'><metadata xmlns='${MAM}'/></iq>`);
      await sendMany(alice.client, bob.jid, 3);
      const { results, ids } = await fetch(alice.client);
      const meta = await alice.client.iq(`<iq type='get' id='meta2'><metadata xmlns='${MAM}'/></iq>`);
      const stamp = (m: Element) => forwarded(m).getChild('delay', DELAY)!.attrs.stamp;
      assertExact(meta, `<iq type='result' id='meta2' to='${alice.client.jid}'><metadata xmlns='${MAM}'><start id='${ids[0]}' timestamp='${stamp(results[0])}'/><end id='${ids[2]}' timestamp='${stamp(results[2])}'/></metadata></iq>`);
    });

    it('does not let anyone query another account\'s archive', async () => {
      const alice = await user('alice');
      const bob = await user('bob');
      await sendMany(alice.client, bob.jid, 1);
      await bob.client.expect("<message id='m1'/>");
      const answer = await bob.client.iq(`<iq type='set' id='spy' to='${alice.jid}'><query xmlns='${MAM}'/></iq>`);
      assertExact(answer, iqError({ id: 'spy', from: alice.jid, to: bob.client.jid!, condition: 'service-unavailable', type: 'cancel' }));
      await bob.client.expectNothing(200);
    });

    it('refuses a message whose archive write cannot be made, and does not deliver it', async () => {
      const alice = await user('alice');
      const bob = await user('bob');
      const store = server.server.storage.archive as { append: (m: unknown[]) => Promise<void> };
      const original = store.append;
      store.append = async () => {
        throw Object.assign(new Error('connection lost'), { code: 'ECONNRESET' });
      };
      try {
        alice.client.send(`<message to='${bob.jid}' type='chat' id='lost'><body>lost?</body></message>`);
        await alice.client.expect(`<message type='error' id='lost' from='${bob.jid}'><error type='wait'><internal-server-error xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`, { timeout: 10_000 });
      } finally {
        store.append = original;
      }
      await bob.client.expectNothing(300);
      // The sender's next message goes through once the database is back.
      await sendMany(alice.client, bob.jid, 1, 'back');
      await bob.client.expect("<message id='back1'/>");
      assert.deepEqual((await fetch(alice.client)).bodies, ['back1']);
    });
  });
}

describe('message archive retention', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ toml: '[modules.mam]\nmax_age = 1\npurge_interval = 1' });
  });
  after(() => server?.stop());

  it('deletes messages older than max_age days, and keeps the rest', async () => {
    const alice = await server.addUser('alice', 'secret');
    const bob = await server.addUser('bob', 'secret');
    const client = await server.login('alice', 'secret');
    const owner = { username: 'alice', domain: 'localhost' };
    await server.server.storage.archive.append([{
      id: '0000000000000aaaaaaaa', owner, with: bob.jid, withResource: '', direction: 'out',
      timestamp: Date.now() - 2 * 86_400_000, stanza: `<message xmlns='jabber:client' to='${bob.jid}'><body>old</body></message>`, body: 'old',
    }]);
    client.send(`<message to='${bob.jid}' type='chat' id='new'><body>new</body></message>`);
    await sleep(1500);
    const { results } = await query(client);
    assert.deepEqual(results.map(bodyOf), ['new']);
    assert.ok(alice);
  });
});

describe('message archive across two hosts of one server', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ hosts: ['localhost', 'clinic.example'], toml: '[modules.mam]\n' });
  });
  after(() => server?.stop());

  /** A new account on each host, logged in (desk, phone); the second one available. */
  async function acrossHosts(sender: string, recipient: string): Promise<[ScriptedClient, ScriptedClient]> {
    await server.addUser(`${sender}@localhost`, 'secret');
    await server.addUser(`${recipient}@clinic.example`, 'secret');
    const from = await server.login(`${sender}@localhost`, 'secret', { resource: 'desk' });
    const to = await server.login(`${recipient}@clinic.example`, 'secret', { resource: 'phone' });
    to.send('<presence/>');
    await to.expect('<presence/>', { skip: true });
    return [from, to];
  }

  it('delivers and archives a burst to the other host in the order sent', async () => {
    const [carol, dave] = await acrossHosts('carol', 'dave');
    const bodies = Array.from({ length: 60 }, (_, i) => `x${i + 1}`);
    for (const body of bodies) carol.send(`<message to='dave@clinic.example' type='chat' id='${body}'><body>${body}</body></message>`);
    const received: string[] = [];
    while (received.length < bodies.length) received.push((await dave.next({ timeout: 10_000 })).getChildText('body') ?? '');
    assert.deepEqual(received, bodies);
    assert.deepEqual((await fetch(dave, `<set xmlns='${RSM}'><max>100</max></set>`)).bodies, bodies);
    assert.deepEqual((await fetch(carol, `<set xmlns='${RSM}'><max>100</max></set>`)).bodies, bodies);
  });

  it('archives each side on its own host, forged ids removed on both', async () => {
    const [alice, bob] = await acrossHosts('alice', 'bob');
    alice.send(`<message to='bob@clinic.example' type='chat' id='x1'><body>across</body><stanza-id xmlns='${SID}' by='bob@clinic.example' id='forged'/><stanza-id xmlns='${SID}' by='alice@localhost' id='forged'/></message>`);
    const got = await bob.expect("<message id='x1'/>");
    assertExact(got, `<message from='alice@localhost/desk' to='bob@clinic.example' type='chat' id='x1'><body>across</body><stanza-id xmlns='${SID}' by='bob@clinic.example' id='{{any}}'/></message>`);
    const bobs = await fetch(bob);
    assert.deepEqual(bobs.ids, [got.getChild('stanza-id', SID)!.attrs.id]);
    const alices = await fetch(alice);
    assert.deepEqual(alices.bodies, ['across']);
    const stored = forwarded(alices.results[0]).getChild('message')!;
    // Alice's copy is what she sent, less the id forged in her host's name: the one naming bob's
    // host is removed where it is assigned, on arrival there.
    assert.deepEqual(stored.getChildren('stanza-id', SID).map((e) => [e.attrs.by, e.attrs.id]), [['bob@clinic.example', 'forged'], ['alice@localhost', alices.ids[0]]]);
  });
});
