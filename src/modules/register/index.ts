/**
 * XEP-0077 In-Band Registration, for the server's own accounts (off unless configured).
 *
 * Before authentication (the `jabber:iq:register` stream feature): get → the fields,
 * set → a new account through the account manager (PRECIS, salted SCRAM keys, `user:created`).
 * After authentication: get → <registered/> with the username, set with username and
 * password → password change, set with <remove/> → result first, then the account is removed
 * (its sessions end with a <not-authorized/> stream error).
 *
 * Passwords never cross an unencrypted stream unless the operator says so
 * (`require_encryption`), and are never logged.
 *
 * Error choices, where XEP-0077 leaves room:
 * - a field missing or empty at registration: <not-acceptable/> (XEP-0077 §3.1 says MUST);
 *   a password shorter than `min_password_length` or refused by PRECIS: <not-acceptable/> too;
 * - a username that is not a valid JID localpart: <jid-malformed/> (RFC 6120 §8.3.3.8);
 *   one that is taken or reserved: <conflict/>;
 * - registration over an unencrypted stream: <policy-violation/> (a local policy the client
 *   can satisfy by negotiating TLS, so type modify); a password change there:
 *   <not-authorized/>, as the password-change table of §3.3 specifies;
 * - too many registrations from one address: <policy-violation/> of type wait, since it is a
 *   per-address policy rather than the server running short of resources.
 */
import { BlockList as AddressList, isIP } from 'node:net';
import { z } from 'zod';
import { defineModule } from '../api.ts';
import { el, type XmlElement } from '../../xml/element.ts';
import { StanzaError, errorReply } from '../../xml/errors.ts';
import { Accounts, PrecisError } from '../../auth/accounts.ts';
import { preparePassword } from '../../auth/precis.ts';
import { tryParseJid } from '../../router/jid.ts';
import type { UserRef } from '../../storage/types.ts';
import { RateLimiter } from '../../util/rate-limit.ts';

export const NS_REGISTER = 'jabber:iq:register';
export const NS_REGISTER_FEATURE = 'http://jabber.org/features/iq-register';
const NS_OOB = 'jabber:x:oob';

/** An address, or a CIDR block `address/prefix`. */
function isAddressOrBlock(entry: string): boolean {
  const [address, prefix, ...rest] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  const bits = Number(prefix);
  return /^\d{1,3}$/.test(prefix) && bits <= (family === 4 ? 32 : 128);
}

const DEFAULT_RESERVED = [
  'admin', 'administrator', 'root', 'postmaster', 'hostmaster', 'webmaster', 'abuse', 'security', 'support', 'noreply',
];

const config = z.object({
  allow_registration: z.boolean().default(true)
    .describe('Let anyone create an account in-band (XEP-0077) before logging in. When false, only password changes and account removal are offered.'),
  require_encryption: z.boolean().default(true)
    .describe('Refuse registration and password changes on streams without TLS, so a password never crosses the network in the clear.'),
  min_password_length: z.number().int().min(1).max(1024).default(8)
    .describe('Shortest password accepted at registration and on a password change, in characters (after PRECIS preparation).'),
  registrations_per_address: z.number().int().min(1).max(1_000_000).default(3)
    .describe('Registration attempts (valid requests, successful or taken names) allowed per remote address per `window`; IPv6 addresses count per /64.'),
  window: z.number().int().min(1).max(30 * 24 * 3600).default(3600)
    .describe('Seconds over which `registrations_per_address` applies.'),
  trusted_addresses: z.array(z.string().refine(isAddressOrBlock, 'expected an IP address or CIDR block like 10.0.0.0/8'))
    .default([])
    .describe('Addresses or CIDR blocks exempt from the per-address limit (a provisioning host, say).'),
  reserved_usernames: z.array(z.string()).default(DEFAULT_RESERVED)
    .describe('Usernames nobody may register (compared after PRECIS preparation); they are answered like taken names.'),
  allow_password_change: z.boolean().default(true)
    .describe('Let logged-in users change their password in-band.'),
  allow_account_removal: z.boolean().default(true)
    .describe('Let logged-in users delete their own account in-band (<remove/>).'),
  instructions: z.string().min(1).max(1000).default('Choose a username and password to register with this server.')
    .describe('Text shown by clients above the registration fields.'),
  registration_url: z.string().url().optional()
    .describe('When registration is closed, point clients here instead (XEP-0077 §5 redirection with an XEP-0066 URL).'),
}).strict();

/** Rate-limit key: the IPv4 address, or the /64 of an IPv6 address. */
export function addressKey(address: string): string {
  const v4mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (v4mapped) return v4mapped[1];
  if (isIP(address) !== 6) return address;
  const [head, tail = ''] = address.toLowerCase().split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === '' ? [] : tail.split(':');
  const groups = address.includes('::') ? [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right] : left;
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

function passwordLength(password: string): number {
  return [...preparePassword(password)].length;
}

export default defineModule({
  name: 'register',
  enabledByDefault: false,
  config,
  setup(ctx) {
    const cfg = ctx.config;
    const limiter = new RateLimiter({ limit: cfg.registrations_per_address, windowMs: cfg.window * 1000, maxKeys: 100_000 });
    const trusted = new AddressList();
    for (const entry of cfg.trusted_addresses) {
      const [address, prefix] = entry.split('/');
      const family = isIP(address) === 4 ? 'ipv4' : 'ipv6';
      if (prefix === undefined) trusted.addAddress(address, family);
      else trusted.addSubnet(address, Number(prefix), family);
    }
    const reserved = new Set<string>();
    for (const name of cfg.reserved_usernames) {
      try {
        reserved.add(Accounts.ref(name, ctx.host).username);
      } catch {
        // Not a valid username: nobody can register it anyway.
      }
    }
    const isTrusted = (address: string): boolean => {
      const plain = address.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
      const family = isIP(plain);
      return family !== 0 && trusted.check(plain, family === 4 ? 'ipv4' : 'ipv6');
    };

    ctx.addFeature(NS_REGISTER);
    if (cfg.allow_registration) ctx.addStreamFeature(el('register', { xmlns: NS_REGISTER_FEATURE }), { beforeAuth: true });

    /** The password of a request, checked against PRECIS and the minimum length. */
    function acceptablePassword(password: string): void {
      let length: number;
      try {
        length = passwordLength(password);
      } catch (err) {
        if (err instanceof PrecisError) throw new StanzaError('not-acceptable', 'the password contains characters that are not allowed');
        throw err;
      }
      if (length < cfg.min_password_length) {
        throw new StanzaError('not-acceptable', `the password must be at least ${cfg.min_password_length} characters long`);
      }
    }

    // --- before authentication -----------------------------------------------------------

    async function register(query: XmlElement, remoteAddress: string): Promise<void> {
      if (query.getChild('remove') !== undefined) throw new StanzaError('unexpected-request', 'log in to remove an account');
      const username = query.getChildText('username')?.trim() ?? '';
      const password = query.getChildText('password') ?? '';
      if (username === '' || password === '') throw new StanzaError('not-acceptable', 'a username and a password are required');
      let user: UserRef;
      try {
        user = Accounts.ref(username, ctx.host);
      } catch (err) {
        if (err instanceof PrecisError) throw new StanzaError('jid-malformed', 'this username cannot be part of an address');
        throw err;
      }
      acceptablePassword(password);
      if (!isTrusted(remoteAddress) && !limiter.hit(addressKey(remoteAddress))) {
        ctx.log.warn({ address: remoteAddress }, 'registration refused: too many from this address');
        throw new StanzaError('policy-violation', 'too many registrations from your address, try again later', { type: 'wait' });
      }
      if (reserved.has(user.username)) throw new StanzaError('conflict', 'this username is taken');
      let created: boolean;
      try {
        created = await ctx.accounts.create(user, password);
      } catch (err) {
        if (err instanceof PrecisError) throw new StanzaError('not-acceptable', 'the password contains characters that are not allowed');
        throw err;
      }
      if (!created) throw new StanzaError('conflict', 'this username is taken');
      ctx.log.info({ user: `${user.username}@${user.domain}`, address: remoteAddress }, 'account registered in-band');
    }

    function registrationForm(): XmlElement {
      return el('query', { xmlns: NS_REGISTER }, el('instructions', {}, cfg.instructions), el('username'), el('password'));
    }

    ctx.handlePreAuthIq(NS_REGISTER, async (stanza, stream) => {
      const type = stanza.attrs.type;
      if (type === 'result' || type === 'error') return true; // never answer an answer
      const query = stanza.firstElement();
      const to = stanza.attrs.to;
      if (query?.name !== 'query' || (to !== undefined && tryParseJid(to)?.full !== ctx.host)) return false;
      const reply = (payload?: XmlElement) => stream.send(el('iq', { type: 'result', id: stanza.attrs.id, from: ctx.host }, payload));
      const fail = (error: StanzaError) => stream.send(errorReply(stanza, error));
      if (!cfg.allow_registration) {
        if (type !== 'get' || cfg.registration_url === undefined) return false; // <service-unavailable/>
        reply(el('query', { xmlns: NS_REGISTER },
          el('instructions', {}, `To register, visit ${cfg.registration_url}`),
          el('x', { xmlns: NS_OOB }, el('url', {}, cfg.registration_url))));
        return true;
      }
      if (cfg.require_encryption && !stream.secure) {
        fail(new StanzaError('policy-violation', 'registration requires an encrypted stream: negotiate STARTTLS first'));
        return true;
      }
      if (type === 'get') {
        reply(registrationForm());
        return true;
      }
      if (type !== 'set') {
        fail(new StanzaError('bad-request', 'IQ type must be get or set'));
        return true;
      }
      try {
        await register(query, stream.remoteAddress);
        reply();
      } catch (err) {
        if (!(err instanceof StanzaError)) {
          ctx.log.error({ err }, 'in-band registration failed');
          fail(new StanzaError('internal-server-error'));
        } else {
          fail(err);
        }
      }
      return true;
    });

    // --- after authentication ------------------------------------------------------------

    ctx.handleIq({ xmlns: NS_REGISTER, element: 'query', type: 'get', target: 'host' }, ({ from }) => {
      if (from.local === '') throw new StanzaError('service-unavailable');
      return el('query', { xmlns: NS_REGISTER },
        el('instructions', {}, 'You are registered. Send a new password to change it, or <remove/> to delete your account.'),
        el('registered'),
        el('username', {}, from.local),
        el('password'));
    });

    ctx.handleIq({ xmlns: NS_REGISTER, element: 'query', type: 'set', target: 'host' }, ({ payload, from, session }) => {
      if (from.local === '') throw new StanzaError('service-unavailable');
      const user: UserRef = { username: from.local, domain: from.domain };
      const children = payload.getChildren();

      if (payload.getChild('remove') !== undefined) {
        if (children.length !== 1) throw new StanzaError('bad-request', '<remove/> must be the only child of the query');
        if (!cfg.allow_account_removal) throw new StanzaError('not-allowed', 'accounts cannot be removed in-band here');
        // The result goes out first (the router sends it when this returns); then the account
        // goes, and with it every session, closed with <not-authorized/>.
        setImmediate(() => {
          ctx.log.info({ user: from.bare }, 'account removed in-band');
          ctx.accounts.remove(user).catch((err: unknown) => ctx.log.error({ err, user: from.bare }, 'in-band account removal failed'));
        });
        return;
      }

      if (!cfg.allow_password_change) throw new StanzaError('not-allowed', 'passwords cannot be changed in-band here');
      const username = payload.getChildText('username')?.trim();
      const password = payload.getChildText('password');
      if (username === undefined || password === undefined) {
        throw new StanzaError('bad-request', 'a password change needs <username/> and <password/>');
      }
      if (cfg.require_encryption && session !== undefined && !session.secure) {
        throw new StanzaError('not-authorized', 'passwords can only be changed over an encrypted stream');
      }
      if (!sameAccount(username, from.local, from.bare)) throw new StanzaError('forbidden', 'you can only change your own password');
      if (password === '') throw new StanzaError('not-acceptable', 'the password cannot be empty');
      acceptablePassword(password);
      return changePassword(user, password, from.bare);
    });

    async function changePassword(user: UserRef, password: string, bare: string): Promise<void> {
      let changed: boolean;
      try {
        changed = await ctx.accounts.setPassword(user, password);
      } catch (err) {
        if (err instanceof PrecisError) throw new StanzaError('not-acceptable', 'the password contains characters that are not allowed');
        throw err;
      }
      if (!changed) throw new StanzaError('registration-required');
      ctx.log.info({ user: bare }, 'password changed in-band');
    }

    /** The <username/> of a password change names the requester: as a username or a bare JID. */
    function sameAccount(username: string, local: string, bare: string): boolean {
      if (username.includes('@')) return tryParseJid(username)?.bare === bare;
      try {
        return Accounts.ref(username, ctx.host).username === local;
      } catch {
        return false;
      }
    }
  },
});
