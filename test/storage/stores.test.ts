/** Every store method, on every backend. */
import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { RosterItem, ScramCredentials, ScramHash, Storage, UserRef } from '../../src/storage/types.ts';
import { storageBackends, type OpenedBackend } from '../support/storage-backends.ts';

const alice: UserRef = { username: 'alice', domain: 'example.com' };
const bob: UserRef = { username: 'bob', domain: 'example.com' };
const aliceElsewhere: UserRef = { username: 'alice', domain: 'example.org' };

const KEY_SIZE: Record<ScramHash, number> = { 'SHA-1': 20, 'SHA-256': 32, 'SHA-512': 64 };

function credentials(iterations = 4096): ScramCredentials {
  const keys = (hash: ScramHash, extra: number) => ({
    salt: randomBytes(16),
    iterations: iterations + extra,
    storedKey: randomBytes(KEY_SIZE[hash]),
    serverKey: randomBytes(KEY_SIZE[hash]),
  });
  return { 'SHA-1': keys('SHA-1', 0), 'SHA-256': keys('SHA-256', 1), 'SHA-512': keys('SHA-512', 2) };
}

function item(jid: string, extra: Partial<RosterItem> = {}): RosterItem {
  return { jid, subscription: 'none', askOut: false, askIn: false, groups: [], ...extra };
}

/** Puts one row in every store for `user`. */
async function fill(storage: Storage, user: UserRef): Promise<void> {
  await storage.users.create(user, credentials());
  await storage.roster.put(user, item('friend@example.net', { groups: ['Friends', 'Work'] }));
  await storage.vcards.set(user, `<vCard xmlns="vcard-temp"><FN>${user.username}</FN></vCard>`);
  await storage.blocklist.add(user, ['spam@example.net']);
  await storage.lastActivity.set(user, { timestamp: 1_700_000_000, status: 'gone' });
}

async function contents(storage: Storage, user: UserRef) {
  return {
    exists: await storage.users.exists(user),
    credentials: (await storage.users.getCredentials(user)) !== undefined,
    roster: (await storage.roster.get(user)).items.length,
    vcard: await storage.vcards.get(user),
    blocklist: await storage.blocklist.get(user),
    lastActivity: await storage.lastActivity.get(user),
  };
}

for (const backend of storageBackends) {
  describe(`storage stores (${backend.name})`, () => {
    let opened: OpenedBackend;
    let storage: Storage;

    beforeEach(async () => {
      opened = await backend.open();
      storage = opened.storage;
    });
    afterEach(() => opened.drop());

    describe('users', () => {
      test('create stores the SCRAM keys of every hash; a second create is refused', async () => {
        const creds = credentials();
        assert.equal(await storage.users.create(alice, creds), true);
        assert.equal(await storage.users.create(alice, credentials(10_000)), false);
        assert.deepEqual(await storage.users.getCredentials(alice), creds);
      });

      test('getCredentials of an unknown account is undefined', async () => {
        assert.equal(await storage.users.getCredentials(alice), undefined);
      });

      test('the same localpart on two domains is two accounts', async () => {
        const a = credentials();
        const b = credentials(5000);
        assert.equal(await storage.users.create(alice, a), true);
        assert.equal(await storage.users.create(aliceElsewhere, b), true);
        assert.deepEqual(await storage.users.getCredentials(alice), a);
        assert.deepEqual(await storage.users.getCredentials(aliceElsewhere), b);
      });

      test('setCredentials replaces the keys, and refuses an unknown account without creating it', async () => {
        await storage.users.create(alice, credentials());
        const next = credentials(8192);
        assert.equal(await storage.users.setCredentials(alice, next), true);
        assert.deepEqual(await storage.users.getCredentials(alice), next);
        assert.equal(await storage.users.setCredentials(bob, credentials()), false);
        assert.equal(await storage.users.exists(bob), false);
        assert.equal(await storage.users.getCredentials(bob), undefined);
      });

      test('exists', async () => {
        assert.equal(await storage.users.exists(alice), false);
        await storage.users.create(alice, credentials());
        assert.equal(await storage.users.exists(alice), true);
        assert.equal(await storage.users.exists(aliceElsewhere), false);
      });

      test('list returns one domain\'s usernames, sorted', async () => {
        for (const username of ['zed', 'alice', 'émile', 'bob']) await storage.users.create({ username, domain: 'example.com' }, credentials());
        await storage.users.create(aliceElsewhere, credentials());
        assert.deepEqual(await storage.users.list('example.com'), ['alice', 'bob', 'zed', 'émile']);
        assert.deepEqual(await storage.users.list('example.org'), ['alice']);
        assert.deepEqual(await storage.users.list('example.net'), []);
      });

      test('remove deletes the account and its credentials only', async () => {
        await fill(storage, alice);
        assert.equal(await storage.users.remove(alice), true);
        assert.equal(await storage.users.remove(alice), false);
        assert.equal(await storage.users.exists(alice), false);
        assert.equal(await storage.users.getCredentials(alice), undefined);
        // Module data is removed by its module (user:removed), not by users.remove.
        assert.equal((await storage.roster.get(alice)).items.length, 1);
        assert.notEqual(await storage.vcards.get(alice), undefined);
        // The name can be registered again, with new keys.
        const creds = credentials();
        assert.equal(await storage.users.create(alice, creds), true);
        assert.deepEqual(await storage.users.getCredentials(alice), creds);
      });
    });

    describe('roster', () => {
      test('an empty roster has version 0', async () => {
        assert.deepEqual(await storage.roster.get(alice), { version: 0, items: [] });
        assert.equal(await storage.roster.getItem(alice, 'bob@example.com'), undefined);
      });

      test('put stores every field and returns the bumped version', async () => {
        const full = item('bob@example.com', {
          name: 'Bob «the builder»',
          subscription: 'from',
          askOut: true,
          askIn: true,
          askInStanza: '<presence xmlns="jabber:client" from="bob@example.com" to="alice@example.com" type="subscribe"><status>hi ✓</status></presence>',
          groups: ['Work', 'Friends'],
        });
        const minimal = item('carol@example.com');
        assert.equal(await storage.roster.put(alice, full), 1);
        assert.equal(await storage.roster.put(alice, minimal), 2);
        const roster = await storage.roster.get(alice);
        assert.equal(roster.version, 2);
        assert.deepEqual(roster.items, [{ ...full, groups: ['Friends', 'Work'] }, minimal]);
        assert.deepEqual(await storage.roster.getItem(alice, 'carol@example.com'), minimal);
        assert.deepEqual(await storage.roster.getItem(alice, 'bob@example.com'), { ...full, groups: ['Friends', 'Work'] });
      });

      test('every subscription state round-trips', async () => {
        for (const subscription of ['none', 'to', 'from', 'both'] as const) {
          await storage.roster.put(alice, item(`${subscription}@example.com`, { subscription }));
          assert.equal((await storage.roster.getItem(alice, `${subscription}@example.com`))?.subscription, subscription);
        }
      });

      test('put replaces an item: fields cleared, groups replaced, duplicates collapsed', async () => {
        await storage.roster.put(alice, item('bob@example.com', { name: 'Bob', askIn: true, askInStanza: '<presence/>', groups: ['A', 'B'] }));
        const version = await storage.roster.put(alice, item('bob@example.com', { subscription: 'both', groups: ['C', 'C', 'B'] }));
        assert.equal(version, 2);
        assert.deepEqual(await storage.roster.get(alice), {
          version: 2,
          items: [item('bob@example.com', { subscription: 'both', groups: ['B', 'C'] })],
        });
      });

      test('remove returns the new version, or undefined (and no bump) for a missing item', async () => {
        await storage.roster.put(alice, item('bob@example.com', { groups: ['A'] }));
        await storage.roster.put(alice, item('carol@example.com'));
        assert.equal(await storage.roster.remove(alice, 'bob@example.com'), 3);
        assert.equal(await storage.roster.remove(alice, 'bob@example.com'), undefined);
        assert.equal(await storage.roster.remove(alice, 'nobody@example.com'), undefined);
        assert.deepEqual(await storage.roster.get(alice), { version: 3, items: [item('carol@example.com')] });
        // Its groups went with it: putting it back without groups shows none.
        await storage.roster.put(alice, item('bob@example.com'));
        assert.deepEqual((await storage.roster.getItem(alice, 'bob@example.com'))?.groups, []);
      });

      test('removeAll empties the roster and bumps the version once, only when something was removed', async () => {
        await storage.roster.removeAll(alice);
        assert.equal((await storage.roster.get(alice)).version, 0);
        await storage.roster.put(alice, item('bob@example.com', { groups: ['A'] }));
        await storage.roster.put(alice, item('carol@example.com'));
        await storage.roster.removeAll(alice);
        assert.deepEqual(await storage.roster.get(alice), { version: 3, items: [] });
        await storage.roster.removeAll(alice);
        assert.equal((await storage.roster.get(alice)).version, 3);
        // The counter carries on, never reissuing a version.
        assert.equal(await storage.roster.put(alice, item('dave@example.com')), 4);
      });

      test('versions and items are per account', async () => {
        await storage.roster.put(alice, item('carol@example.com'));
        await storage.roster.put(alice, item('dave@example.com'));
        assert.equal(await storage.roster.put(bob, item('carol@example.com', { subscription: 'both' })), 1);
        assert.equal(await storage.roster.put(aliceElsewhere, item('x@example.com')), 1);
        assert.equal((await storage.roster.get(alice)).version, 2);
        assert.deepEqual(await storage.roster.get(bob), { version: 1, items: [item('carol@example.com', { subscription: 'both' })] });
        await storage.roster.removeAll(bob);
        assert.equal((await storage.roster.get(alice)).items.length, 2);
      });

      test('concurrent changes each get their own version', async () => {
        const versions = await Promise.all(Array.from({ length: 25 }, (_, i) => storage.roster.put(alice, item(`c${i}@example.com`, { groups: ['G'] }))));
        assert.deepEqual([...versions].sort((a, b) => a - b), Array.from({ length: 25 }, (_, i) => i + 1));
        const roster = await storage.roster.get(alice);
        assert.equal(roster.version, 25);
        assert.equal(roster.items.length, 25);
      });

      test('a rejected put changes nothing, not even the version', async () => {
        await storage.roster.put(alice, item('bob@example.com'));
        await assert.rejects(storage.roster.put(alice, item('carol@example.com', { subscription: 'bogus' as never })));
        assert.deepEqual(await storage.roster.get(alice), { version: 1, items: [item('bob@example.com')] });
      });

      test('a large roster with many groups reads back whole', async () => {
        const items = Array.from({ length: 150 }, (_, i) => item(`contact${String(i).padStart(3, '0')}@example.com`, {
          name: `Contact ${i}`,
          subscription: 'both',
          groups: i % 3 === 0 ? [] : [`G${i % 7}`, `G${i % 5}x`],
        }));
        for (const it of items) await storage.roster.put(alice, it);
        const roster = await storage.roster.get(alice);
        assert.equal(roster.version, 150);
        assert.deepEqual(roster.items, items.map((it) => ({ ...it, groups: [...it.groups].sort() })));
      });
    });

    describe('vcards', () => {
      test('get, set, overwrite, remove', async () => {
        assert.equal(await storage.vcards.get(alice), undefined);
        await storage.vcards.set(alice, '<vCard xmlns="vcard-temp"><FN>Alice</FN></vCard>');
        await storage.vcards.set(bob, '<vCard xmlns="vcard-temp"><FN>Bob</FN></vCard>');
        await storage.vcards.set(alice, '<vCard xmlns="vcard-temp"><FN>Alice Ω</FN></vCard>');
        assert.equal(await storage.vcards.get(alice), '<vCard xmlns="vcard-temp"><FN>Alice Ω</FN></vCard>');
        await storage.vcards.remove(alice);
        await storage.vcards.remove(alice);
        assert.equal(await storage.vcards.get(alice), undefined);
        assert.equal(await storage.vcards.get(bob), '<vCard xmlns="vcard-temp"><FN>Bob</FN></vCard>');
      });

      test('a vCard with a large photo', async () => {
        const xml = `<vCard xmlns="vcard-temp"><PHOTO><BINVAL>${randomBytes(256 * 1024).toString('base64')}</BINVAL></PHOTO></vCard>`;
        await storage.vcards.set(alice, xml);
        assert.equal(await storage.vcards.get(alice), xml);
      });
    });

    describe('blocklist', () => {
      test('add is idempotent and ignores duplicates; get is sorted', async () => {
        assert.deepEqual(await storage.blocklist.get(alice), []);
        await storage.blocklist.add(alice, ['spam@example.net', 'example.org', 'eve@example.com/phone', 'spam@example.net']);
        await storage.blocklist.add(alice, ['spam@example.net']);
        await storage.blocklist.add(alice, []);
        assert.deepEqual(await storage.blocklist.get(alice), ['eve@example.com/phone', 'example.org', 'spam@example.net']);
        assert.deepEqual(await storage.blocklist.get(bob), []);
      });

      test('remove some, none, or all', async () => {
        await storage.blocklist.add(alice, ['a@x', 'b@x', 'c@x']);
        await storage.blocklist.add(bob, ['a@x']);
        await storage.blocklist.remove(alice, ['b@x', 'unknown@x']);
        assert.deepEqual(await storage.blocklist.get(alice), ['a@x', 'c@x']);
        await storage.blocklist.remove(alice, []);
        assert.deepEqual(await storage.blocklist.get(alice), ['a@x', 'c@x']);
        await storage.blocklist.remove(alice);
        assert.deepEqual(await storage.blocklist.get(alice), []);
        assert.deepEqual(await storage.blocklist.get(bob), ['a@x']);
      });

      test('lists longer than one statement batch', async () => {
        const jids = Array.from({ length: 1234 }, (_, i) => `u${String(i).padStart(4, '0')}@example.net`);
        await storage.blocklist.add(alice, jids);
        assert.deepEqual(await storage.blocklist.get(alice), jids);
        await storage.blocklist.remove(alice, jids.slice(0, 1200));
        assert.deepEqual(await storage.blocklist.get(alice), jids.slice(1200));
      });
    });

    describe('lastActivity', () => {
      test('get, set, overwrite, remove', async () => {
        assert.equal(await storage.lastActivity.get(alice), undefined);
        await storage.lastActivity.set(alice, { timestamp: 1_700_000_000, status: 'Gone fishing' });
        await storage.lastActivity.set(bob, { timestamp: 1_600_000_000, status: '' });
        assert.deepEqual(await storage.lastActivity.get(alice), { timestamp: 1_700_000_000, status: 'Gone fishing' });
        // Past 2038: the column is 64-bit on both backends.
        await storage.lastActivity.set(alice, { timestamp: 4_102_444_800, status: '' });
        assert.deepEqual(await storage.lastActivity.get(alice), { timestamp: 4_102_444_800, status: '' });
        await storage.lastActivity.remove(alice);
        await storage.lastActivity.remove(alice);
        assert.equal(await storage.lastActivity.get(alice), undefined);
        assert.deepEqual(await storage.lastActivity.get(bob), { timestamp: 1_600_000_000, status: '' });
      });

      test('setMany records a batch in one go, and nothing for an account that no longer exists', async () => {
        const carol: UserRef = { username: 'carol', domain: 'example.com' };
        const ghost: UserRef = { username: 'ghost', domain: 'example.com' };
        await storage.users.create(carol, credentials());
        await storage.lastActivity.setMany([
          { owner: carol, activity: { timestamp: 1_700_000_001, status: 'shift over' } },
          { owner: ghost, activity: { timestamp: 1_700_000_002, status: '' } },
          { owner: carol, activity: { timestamp: 1_700_000_003, status: 'really' } },
        ]);
        assert.deepEqual(await storage.lastActivity.get(carol), { timestamp: 1_700_000_003, status: 'really' });
        assert.equal(await storage.lastActivity.get(ghost), undefined);
      });
    });

    describe('removeAccount', () => {
      test('deletes everything of that account and nothing of any other', async () => {
        await fill(storage, alice);
        await fill(storage, bob);
        await fill(storage, aliceElsewhere);
        const bobBefore = await contents(storage, bob);
        const elsewhereBefore = await contents(storage, aliceElsewhere);

        assert.equal(await storage.removeAccount(alice), true);
        assert.deepEqual(await contents(storage, alice), {
          exists: false, credentials: false, roster: 0, vcard: undefined, blocklist: [], lastActivity: undefined,
        });
        assert.equal((await storage.roster.get(alice)).version, 0);
        assert.deepEqual(await contents(storage, bob), bobBefore);
        assert.deepEqual(await contents(storage, aliceElsewhere), elsewhereBefore);
        assert.deepEqual((await storage.roster.get(bob)).items[0].groups, ['Friends', 'Work']);
        assert.deepEqual(await storage.users.list('example.com'), ['bob']);
      });

      test('false when there is no account; leftover rows under that name are still cleared', async () => {
        assert.equal(await storage.removeAccount(alice), false);
        await fill(storage, alice);
        await storage.users.remove(alice);
        assert.equal(await storage.removeAccount(alice), false);
        assert.deepEqual(await contents(storage, alice), {
          exists: false, credentials: false, roster: 0, vcard: undefined, blocklist: [], lastActivity: undefined,
        });
      });

      test('the account can be created again, empty', async () => {
        await fill(storage, alice);
        await storage.removeAccount(alice);
        assert.equal(await storage.users.create(alice, credentials()), true);
        assert.deepEqual(await storage.roster.get(alice), { version: 0, items: [] });
      });
    });
  });
}
