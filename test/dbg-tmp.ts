import { startTestServer } from '/work/main/test/support/index.ts';
const server = await startTestServer({ listeners: ['starttls'] });
await server.addUser('alice', 'pw-pw-pw-pw');
const a = await server.login('alice', 'pw-pw-pw-pw', { resource: 'one' });
a.send(`<iq type='get' id='y' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
try { console.log((await a.next({ timeout: 2000 })).toString()); } catch (e) { console.log('TIMEOUT'); }
a.send(`<message to='alice@localhost/one' id='m'><body>x</body></message>`);
try { console.log((await a.next({ timeout: 2000 })).toString()); } catch (e) { console.log('TIMEOUT'); }
await server.stop();
