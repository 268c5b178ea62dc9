import { startTestServer } from '/work/main/test/support/index.ts';
const server = await startTestServer({ toml: process.env.OFF ? '[modules.blocking]\nenabled = false' : '' });
await server.addUser('alice', 'pw-pw-pw-pw');
const a = await server.login('alice', 'pw-pw-pw-pw', { resource: 'one' });
a.send(`<iq type='get' id='y'><ping xmlns='urn:xmpp:ping'/></iq>`);
try { console.log((await a.next({ timeout: 2000 })).toString()); } catch (e) { console.log(String(e).slice(0, 300)); }
await server.stop();
