/**
 * XEP-0313 Message Archive Management (urn:xmpp:mam:2 with #extended) for user archives,
 * with XEP-0359 stanza ids (urn:xmpp:sid:0) and XEP-0441 preferences.
 *
 * Archiving. Both sides of a one-to-one conversation between local accounts are archived,
 * each in its owner's archive under an id that archive assigned (stanza-id.ts); which
 * messages: rules.ts and the owner's preferences (prefs.ts).
 *  - What a user sends is archived when the client sends it (message:outbound), before it is
 *    routed; the copy kept carries <stanza-id by='sender'/>. A message to the user's own
 *    account is archived once, on arrival.
 *  - What a user receives is archived on arrival (message:bare / message:full), before
 *    carbons, delivery or offline storage see it: the message gets <stanza-id by='recipient'/>
 *    in place, so the recipient, its carbon copies and its offline copy all carry the id it has
 *    in the recipient's archive. A message the delivery rules refuse is not archived: for an
 *    account that does not exist, or for a full JID that is gone (but a chat message, which
 *    is then handled as if sent to the bare JID, is).
 *  - A message goes on only once its archive writes have committed (through a batching write
 *    queue: many messages, one transaction). The writes start at priority 100 and are waited
 *    for at -1, so the sender's next message is decided and written meanwhile (HookBus). If
 *    the database stays unreachable, the sender gets an error (rules.ts `storageFailure`) and
 *    the message is not delivered: never delivered yet missing from the archive.
 *  - Any <stanza-id/> naming an address of this domain as 'by' is removed from every message
 *    a client sends and every message arriving for an account, archived or not: only this
 *    server assigns those. <origin-id/> stays.
 * Messages handed to offline storage after a session ended (stream management) are not
 * routed again, so not archived twice.
 *
 * Hooks and priorities (higher runs first):
 *   1000  message:outbound, message:bare, message:full: forged stanza ids removed
 *    500  blocking refuses or drops a message, which is then not archived
 *    100  message:outbound: the sender's copy; message:bare / message:full: the recipient's
 *     -1  message:bare / message:full: both writes have committed
 *   -990  carbons; -1000 default delivery, which hands the message to offline storage
 *
 * Queries (IQ set <query/> to the user's own account): query.ts; results go to the asking
 * resource one <message/> each, oldest first (or newest first with <flip-page/>), then the
 * IQ result with <fin/>. An IQ get <query/> returns the form; <metadata/> the first and last
 * message; <prefs/> reads and sets preferences.
 *
 * Retention: with `max_age` > 0, messages older than that many days are deleted every
 * `purge_interval` seconds (one timer per server, whatever the number of hosts).
 *
 * Left out: MUC archives (no MUC yet), include-groupchat (groupchat messages are never kept in
 * user archives), XEP-0424/0425 retraction tombstones, the XEP-0050 advanced configuration.
 */
import { z } from 'zod';
import { defineModule, type HookResult, type IqRequest, type Session } from '../api.ts';
import { el, type XmlElement } from '../../xml/element.ts';
import { StanzaError, errorReply } from '../../xml/errors.ts';
import { parseStoredElement } from '../../xml/stored.ts';
import { tryParseJid, type Jid } from '../../router/jid.ts';
import { WriteQueue } from '../../storage/write-queue.ts';
import { randomString } from '../../util/random.ts';
import { ArchiveIdNotFound, type ArchivedMessage, type ArchivePrefs, type Storage, type UserRef } from '../../storage/types.ts';
import { archivable, bodyText, storageFailure } from './rules.ts';
import { NS_MAM, PrefsCache, parsePrefs, prefsElement, wanted } from './prefs.ts';
import { finElement, parseQuery, queryForm, type ParsedQuery } from './query.ts';
import { NS_SID, stanzaIdElement, stanzaIds, stripOwnStanzaIds } from './stanza-id.ts';

const NS_EXTENDED = 'urn:xmpp:mam:2#extended';
const NS_FORWARD = 'urn:xmpp:forward:0';
const NS_DELAY = 'urn:xmpp:delay';
const NS_CLIENT = 'jabber:client';

const STRIP_PRIORITY = 1000;
const ARCHIVE_PRIORITY = 100;
const COMMIT_PRIORITY = -1;
const DAY_MS = 86_400_000;

/** Servers (by their storage) whose archive purge is already scheduled by one of their hosts. */
const purging = new WeakSet<Storage>();

/**
 * Per server (by its storage): the hosts this module archives for, and the sender's archive
 * write of each message on its way to one of them. The recipient's host waits for that write
 * together with its own (at COMMIT_PRIORITY), whichever host the sender is on, so the message
 * costs one commit before delivery, not two in a row, and the sender's stream need not wait.
 */
const servers = new WeakMap<Storage, { hosts: Set<string>; sentWrites: WeakMap<XmlElement, Promise<void>> }>();

const config = z.object({
  default_mode: z.enum(['always', 'never', 'roster']).default('always')
    .describe("Archiving preference of an account that has set none (XEP-0441): 'always', 'never', or 'roster' (only contacts in the roster)."),
  default_page_size: z.number().int().min(1).max(10_000).default(50)
    .describe('Messages per page of a query that gives no RSM <max/> (at most `max_page_size`).'),
  max_page_size: z.number().int().min(1).max(10_000).default(250)
    .describe('Most messages per page; a larger <max/> is reduced to this.'),
  max_age: z.number().int().min(0).max(36_500).default(0)
    .describe('Days a message stays in the archive; older ones are deleted. 0 keeps them forever.'),
  purge_interval: z.number().min(1).max(86_400).default(3600)
    .describe('Seconds between two deletions of messages older than `max_age`.'),
  write_timeout: z.number().min(0.1).max(3600).default(30)
    .describe('Seconds an archive write may keep failing (retried with back-off) before the sender gets an error and the message is not delivered.'),
}).strict();

export default defineModule({
  name: 'mam',
  config,
  setup(ctx) {
    const { host } = ctx;
    for (const feature of [NS_MAM, NS_EXTENDED, NS_SID]) ctx.addFeature(feature, 'account');

    const writes = new WriteQueue<ArchivedMessage>({
      write: (batch) => ctx.storage.archive.append([...batch]),
      giveUpAfterMs: ctx.config.write_timeout * 1000,
      log: ctx.log,
      name: 'mam',
    });
    ctx.onStop(() => writes.close());

    // --- preferences ---------------------------------------------------------------------

    const prefsCache = new PrefsCache(10_000, 60_000);
    const keyOf = (user: UserRef) => `${user.username}@${user.domain}`;
    const defaults = (): ArchivePrefs => ({ default: ctx.config.default_mode, always: [], never: [] });

    function prefsOf(owner: UserRef): ArchivePrefs | Promise<ArchivePrefs> {
      const key = keyOf(owner);
      const cached = prefsCache.get(key);
      if (cached !== undefined) return cached;
      return ctx.storage.archive.getPrefs(owner).then((stored) => {
        const prefs = stored ?? defaults();
        prefsCache.set(key, prefs);
        return prefs;
      });
    }

    function shouldArchive(owner: UserRef, peer: Jid): boolean | Promise<boolean> {
      const prefs = prefsOf(owner);
      const roster = ctx.use('roster');
      return prefs instanceof Promise ? prefs.then((p) => wanted(p, owner, peer, roster)) : wanted(prefs, owner, peer, roster);
    }

    // --- archiving -----------------------------------------------------------------------

    /**
     * Writes `stanza` (with the owner's stanza-id added in place) to the owner's archive and
     * resolves once committed.
     */
    function archive(owner: UserRef, direction: 'in' | 'out', peer: Jid, stanza: XmlElement): Promise<void> {
      const { id, timestamp } = stanzaIds.next();
      stanza.append(stanzaIdElement(id, keyOf(owner)));
      const stored = stanza.clone();
      stored.attrs.xmlns = NS_CLIENT;
      const message: ArchivedMessage = {
        id, owner, with: peer.bare, withResource: peer.resource, direction, timestamp, stanza: stored.toString(),
      };
      const body = bodyText(stanza);
      if (body !== undefined) message.body = body;
      return writes.enqueue(message);
    }

    /**
     * Messages archived on arrival, with the account whose archive has them. A chat message for
     * a resource that went away while its write committed comes back through message:bare for
     * the same account (RFC 6121 §8.5.3.2.1): it keeps the id it got and is not archived again.
     */
    const archivedFor = new WeakMap<XmlElement, string>();

    const strip = ({ stanza }: { stanza: XmlElement }): HookResult => {
      stripOwnStanzaIds(stanza, host);
    };
    const stripArriving = ({ stanza, to }: { stanza: XmlElement; to: Jid }): HookResult => {
      if (archivedFor.get(stanza) !== to.bare) stripOwnStanzaIds(stanza, host);
    };
    ctx.hook('message:outbound', strip, STRIP_PRIORITY);
    ctx.hook('message:bare', stripArriving, STRIP_PRIORITY);
    ctx.hook('message:full', stripArriving, STRIP_PRIORITY);

    let server = servers.get(ctx.storage);
    if (server === undefined) servers.set(ctx.storage, server = { hosts: new Set(), sentWrites: new WeakMap() });
    server.hosts.add(host);
    const { hosts: archivingHosts, sentWrites } = server;

    ctx.hook('message:outbound', ({ session, stanza }): HookResult | Promise<HookResult> => {
      if (!archivable(stanza)) return;
      const to = tryParseJid(stanza.attrs.to);
      // Unroutable (the router answers), or to the user's own account (archived on arrival).
      if (to === undefined || to.bare === session.jid.bare) return;
      const failed = (err: unknown): HookResult => {
        refuse(stanza, err, (reply) => session.send(reply));
        return true;
      };
      const keep = (yes: boolean): HookResult | Promise<HookResult> => {
        if (!yes) return;
        // The sender's id is in the sender's copy only: the routed message gets the recipient's.
        const write = archive(session.user, 'out', to, stanza.clone());
        // Nobody on the recipient's side would wait for it: the sender's stream does.
        if (!archivingHosts.has(to.domain)) return write.then(() => undefined, failed);
        // A message that never reaches the recipient's side (bounced, blocked) was refused anyway.
        write.catch((err: unknown) => ctx.log.error({ err }, 'sent message not archived'));
        sentWrites.set(stanza, write);
      };
      return then(() => shouldArchive(session.user, to), keep, failed);
    }, ARCHIVE_PRIORITY);

    /** Both archive writes of a message on its way to a recipient, until they have committed. */
    const commits = new WeakMap<XmlElement, Promise<unknown>>();

    const received = ({ stanza, to }: { stanza: XmlElement; to: Jid }): HookResult | Promise<HookResult> => {
      if (!archivable(stanza) || archivedFor.get(stanza) === to.bare) return;
      const from = tryParseJid(stanza.attrs.from);
      if (from === undefined) return;
      // To a gone resource: refused, or (chat) handled as sent to the bare JID (RFC 6121
      // §8.5.3.2.1). That happens at delivery, after the sender's later messages were archived:
      // the message is archived now, in its turn, and not again there.
      if (to.resource !== '' && ctx.sessionByJid(to) === undefined && stanza.attrs.type !== 'chat') return;
      const owner: UserRef = { username: to.local, domain: to.domain };
      const sent = sentWrites.get(stanza);
      sentWrites.delete(stanza);
      const failed = (err: unknown) => refuseArrived(stanza, err);
      // Waited for just before delivery (below), so the client's next message need not wait.
      const settle = (own: Promise<void> | undefined): HookResult => {
        if (sent === undefined && own === undefined) return;
        const both = Promise.all([sent, own]);
        // Its failure is answered at COMMIT_PRIORITY; it may come sooner, while earlier messages are delivered.
        both.catch(noop);
        commits.set(stanza, both);
      };
      // An account with a session exists; otherwise ask (no archive for a refused message).
      const exists = () => ctx.sessionsOf(owner).length > 0 || ctx.storage.users.exists(owner);
      return then(exists, (known) => {
        if (!known) return settle(undefined);
        return then(() => shouldArchive(owner, from), (yes) => {
          if (!yes) return settle(undefined);
          archivedFor.set(stanza, to.bare);
          return settle(archive(owner, 'in', from, stanza));
        }, failed);
      }, failed);
    };
    ctx.hook('message:bare', received, ARCHIVE_PRIORITY);
    ctx.hook('message:full', received, ARCHIVE_PRIORITY);

    const committed = ({ stanza }: { stanza: XmlElement }): HookResult | Promise<HookResult> => {
      const pending = commits.get(stanza);
      if (pending === undefined) return;
      commits.delete(stanza);
      return pending.then(() => undefined, (err: unknown) => refuseArrived(stanza, err));
    };
    ctx.hook('message:bare', committed, COMMIT_PRIORITY);
    ctx.hook('message:full', committed, COMMIT_PRIORITY);

    /** A message whose archive write failed on arrival: the sender gets the error, the message goes no further. */
    function refuseArrived(stanza: XmlElement, err: unknown): HookResult {
      refuse(stanza, err, (reply) => ctx.route(reply));
      return true;
    }

    function refuse(stanza: XmlElement, err: unknown, send: (reply: XmlElement) => void): void {
      const error = storageFailure(err, 'the message archive');
      ctx.log.error({ err }, 'message not archived: refused');
      send(errorReply(stanza, error));
    }

    ctx.hook('user:removed', ({ user }) => {
      prefsCache.delete(keyOf(user));
    });

    // --- queries -------------------------------------------------------------------------

    const self = { xmlns: NS_MAM, target: 'self' } as const;
    const limits = { defaultSize: Math.min(ctx.config.default_page_size, ctx.config.max_page_size), maxSize: ctx.config.max_page_size };

    ctx.handleIq({ ...self, element: 'query', type: 'get' }, () => queryForm());

    ctx.handleIq({ ...self, element: 'query', type: 'set' }, async (request) => {
      const query = parseQuery(request.payload, limits);
      const owner: UserRef = { username: request.to.local, domain: request.to.domain };
      const page = await runQuery(owner, query);
      const send = (message: XmlElement) => (request.session !== undefined ? request.session.send(message) : ctx.route(message));
      const messages = query.flip ? [...page.messages].reverse() : page.messages;
      // The result messages' ids need only be unique: one random prefix per query, then a count.
      const idPrefix = randomString(6, 'base64url');
      messages.forEach((message, n) => {
        const forwarded = resultMessage(request, query, message, `${idPrefix}-${n}`);
        if (forwarded !== undefined) send(forwarded);
      });
      return finElement(page);
    });

    async function runQuery(owner: UserRef, query: ParsedQuery) {
      const archiveStore = ctx.storage.archive;
      // Of several lower (upper) bounds the latest (earliest) applies; ids sort as time does.
      const afterId = query.after.length === 0 ? undefined : query.after.reduce((a, b) => (b > a ? b : a));
      const beforeId = query.before.length === 0 ? undefined : query.before.reduce((a, b) => (b < a ? b : a));
      // Every id named must exist (§4.1.3): the bounds not passed on, and each of `ids`.
      const named = new Set([...query.after, ...query.before, ...(query.ids ?? [])]);
      if (afterId !== undefined) named.delete(afterId);
      if (beforeId !== undefined) named.delete(beforeId);
      try {
        if (named.size > 0) {
          const found = await archiveStore.query({ owner, ids: [...named], max: 0, fromEnd: false });
          if (found.count !== named.size) throw new StanzaError('item-not-found', 'no archived message has one of the ids');
        }
        return await archiveStore.query({
          owner, with: query.with, start: query.start, end: query.end, afterId, beforeId,
          ids: query.ids, text: query.text, max: query.max, fromEnd: query.fromEnd,
        });
      } catch (err) {
        if (err instanceof ArchiveIdNotFound) throw new StanzaError('item-not-found', `no archived message has the id '${err.id}'`);
        throw err;
      }
    }

    function resultMessage(request: IqRequest, query: ParsedQuery, message: ArchivedMessage, id: string): XmlElement | undefined {
      const original = parseStored(message);
      if (original === undefined) return undefined;
      return el('message', { from: request.to.bare, to: request.from.full, id },
        el('result', { xmlns: NS_MAM, queryid: query.queryid, id: message.id },
          el('forwarded', { xmlns: NS_FORWARD },
            el('delay', { xmlns: NS_DELAY, stamp: new Date(message.timestamp).toISOString() }),
            original)));
    }

    function parseStored(message: ArchivedMessage): XmlElement | undefined {
      const element = parseStoredElement(message.stanza);
      if (element === undefined) {
        ctx.log.error({ id: message.id }, 'unreadable archived message skipped');
        return undefined;
      }
      element.attrs.xmlns ??= NS_CLIENT;
      return element;
    }

    // --- metadata and preferences --------------------------------------------------------

    ctx.handleIq({ ...self, element: 'metadata', type: 'get' }, async ({ to }) => {
      const bounds = await ctx.storage.archive.bounds({ username: to.local, domain: to.domain });
      const edge = (name: string, m: ArchivedMessage) => el(name, { id: m.id, timestamp: new Date(m.timestamp).toISOString() });
      return el('metadata', { xmlns: NS_MAM }, bounds && edge('start', bounds.first), bounds && edge('end', bounds.last));
    });

    ctx.handleIq({ ...self, element: 'prefs', type: 'get' }, async ({ to }) => {
      return prefsElement(await prefsOf({ username: to.local, domain: to.domain }));
    });

    ctx.handleIq({ ...self, element: 'prefs', type: 'set' }, async ({ to, payload }) => {
      const owner: UserRef = { username: to.local, domain: to.domain };
      const prefs = parsePrefs(payload, await prefsOf(owner));
      await ctx.storage.archive.setPrefs(owner, prefs);
      prefsCache.set(keyOf(owner), prefs);
      return prefsElement(prefs);
    });

    // --- retention -----------------------------------------------------------------------

    if (ctx.config.max_age > 0 && !purging.has(ctx.storage)) {
      purging.add(ctx.storage);
      const maxAgeMs = ctx.config.max_age * DAY_MS;
      let running: Promise<void> | undefined;
      const purge = () => {
        running ??= ctx.storage.archive.purgeBefore(Date.now() - maxAgeMs)
          .then((count) => { if (count > 0) ctx.log.info({ count }, 'expired archived messages deleted'); })
          .catch((err: unknown) => ctx.log.error({ err }, 'archive purge failed'))
          .finally(() => { running = undefined; });
      };
      const timer = setInterval(purge, ctx.config.purge_interval * 1000);
      timer.unref();
      ctx.onStop(async () => {
        clearInterval(timer);
        await running;
      });
    }
  },
});

/**
 * `next(value())`, synchronously when `value` is not a promise (so the common case of a stanza
 * runs in one turn and its writes share a batch); `failed` handles a throw or a rejection.
 */
function then<T>(
  value: () => T | Promise<T>,
  next: (value: T) => HookResult | Promise<HookResult>,
  failed: (err: unknown) => HookResult,
): HookResult | Promise<HookResult> {
  let result: T | Promise<T>;
  try {
    result = value();
  } catch (err) {
    return failed(err);
  }
  return result instanceof Promise ? result.then(next, failed) : next(result);
}

function noop(): void {}
