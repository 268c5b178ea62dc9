/**
 * A second process writing to a SQLite database the test process also has open, as the CLI
 * does while the server runs. Usage: node --import tsx sqlite-writer.ts <file> <prefix> <count>
 * Creates the account `<prefix>@example.com`, then puts <count> roster items on the shared
 * account `shared@example.com`.
 */
import { pino } from 'pino';
import { openStorage } from '../../src/storage/index.ts';

const [file, prefix, count] = process.argv.slice(2);
const storage = await openStorage({ backend: 'sqlite', path: file }, pino({ level: 'silent' }));
const keys = { salt: Buffer.from('salt'), iterations: 4096, storedKey: Buffer.alloc(32, 1), serverKey: Buffer.alloc(32, 2) };
await storage.users.create({ username: prefix, domain: 'example.com' }, { 'SHA-1': keys, 'SHA-256': keys, 'SHA-512': keys });
for (let i = 0; i < Number(count); i++) {
  await storage.roster.put({ username: 'shared', domain: 'example.com' }, {
    jid: `${prefix}-${i}@example.net`, subscription: 'both', askOut: false, askIn: false, groups: [prefix],
  });
  // Let the event loop turn, so the other process's writes interleave with ours.
  if (i % 10 === 0) await new Promise((resolve) => setImmediate(resolve));
}
await storage.close();
