"""A slixmpp client driven by test/interop/slixmpp.test.ts: logs in with STARTTLS and SCRAM,
uses roster, disco, ping, version, vCard and blocking, sends a chat message and waits for the
reply, then prints what it saw as one JSON line. Arguments: jid password peer port cafile."""
import asyncio
import json
import ssl
import sys

import slixmpp

jid, password, peer, port, cafile = sys.argv[1:6]


class Client(slixmpp.ClientXMPP):
    def __init__(self):
        super().__init__(jid, password)
        self.ssl_context = ssl.create_default_context(cafile=cafile)
        self.seen = {}
        for plugin in ('xep_0030', 'xep_0054', 'xep_0092', 'xep_0191', 'xep_0199'):
            self.register_plugin(plugin)
        self.add_event_handler('session_start', self.start)
        self.add_event_handler('message', self.message)
        self.add_event_handler('failed_all_auth', lambda _: self.fail('authentication failed'))

    def fail(self, why):
        self.seen['error'] = why
        self.done()

    def done(self):
        print(json.dumps(self.seen), flush=True)
        self.disconnect()

    async def start(self, _event):
        self.seen['jid'] = str(self.boundjid)
        self.send_presence()
        await self.get_roster()
        info = await self['xep_0030'].get_info(jid=self.boundjid.domain)
        self.seen['features'] = sorted(info['disco_info']['features'])
        self.seen['ping'] = (await self['xep_0199'].ping(self.boundjid.domain)) is not None
        version = await self['xep_0092'].get_version(self.boundjid.domain)
        self.seen['version'] = version['software_version']['name']
        vcard = self['xep_0054'].make_vcard()
        vcard['FN'] = 'Alice Liddell'
        await self['xep_0054'].publish_vcard(vcard)
        stored = await self['xep_0054'].get_vcard(self.boundjid.bare)
        self.seen['vcard'] = stored['vcard_temp']['FN']
        await self['xep_0191'].block(['spam@example.com'])
        blocked = await self['xep_0191'].get_blocked()
        self.seen['blocked'] = sorted(str(j) for j in blocked['blocklist']['items'])
        self.send_message(mto=peer, mbody='hello from slixmpp', mtype='chat')

    def message(self, msg):
        if msg['type'] == 'chat':
            self.seen['reply'] = msg['body']
            self.done()
        elif msg['type'] == 'error':
            self.fail('message error: ' + str(msg['error']['condition']))


client = Client()
client.connect(('127.0.0.1', int(port)))
asyncio.get_event_loop().run_until_complete(asyncio.wait_for(client.disconnected, 30))
