"""A slixmpp client driven by test/interop/slixmpp.test.ts for the cases that span time:
offline messages, the message archive, stream resumption and message carbons. It reports on
stdout, one JSON object per line ({"event": ...}); the last one is {"event": "done", ...} or
{"event": "error"}.
Nothing is judged here: the test does the asserting, this only says what slixmpp saw.

Arguments: MODE JID PASSWORD PORT CAFILE [MODE ARGUMENTS]
  offline COUNT        log in, send presence, collect COUNT messages (then 1 s more, to see
                       duplicates), report them with their XEP-0203 delays.
  mam PAGE PEER OTHER  page through the archive with the xep_0313 plugin (XEP-0059 pages of
                       PAGE): forwards, backwards from the last page, filtered on PEER (pages)
                       and on OTHER (the plugin's per-message iterate()). No presence is sent.
  sm BEFORE DURING AFTER REPLY_TO
                       enable stream management with resumption (xep_0198), send presence,
                       say {"event": "ready"}; after BEFORE messages, reset the TCP
                       connection without a word (SO_LINGER 0, then transport abort: an RST)
                       and say {"event": "killed"}; on the line "resume" on stdin, reconnect
                       (slixmpp then sends <resume/>) and say {"event": "resumed"}; once
                       BEFORE+DURING+AFTER messages arrived (and 1 s more), send one message
                       to REPLY_TO, acknowledge what it handled (<a/>) and report.
  carbons PEER         with the xep_0280 plugin: ask the server's disco#info, send presence,
                       enable carbons and say {"event": "ready"}; then say one line per
                       'carbon_received', 'carbon_sent' and 'message' event (the wrapper's
                       from/to/type and the forwarded message's), and act on stdin lines:
                       "disable" (the plugin's disable(), then {"event": "disabled"}), "send"
                       (to PEER: a chat with the plugin's <private/> and XEP-0334 <no-copy/>,
                       then a plain one, ids slix-private and slix-plain; {"event": "sent"}),
                       "done".

SLIXMPP_DEBUG=1 in the environment logs slixmpp's traffic on stderr.
"""
import asyncio
import json
import logging
import os
import socket
import ssl
import struct
import sys

import slixmpp
from slixmpp import JID

NS_SID = 'urn:xmpp:sid:0'
NS_DELAY = 'urn:xmpp:delay'
NS_CARBONS = 'urn:xmpp:carbons:2'
QUIET = 1.0  # seconds to wait after the last expected message, for duplicates

mode, jid, password, port, cafile = sys.argv[1:6]
extra = sys.argv[6:]

if os.environ.get('SLIXMPP_DEBUG'):
    logging.basicConfig(level=logging.DEBUG, format='%(asctime)s %(levelname)s %(name)s %(message)s')


def say(**event):
    print(json.dumps(event), flush=True)


def stamp_of(element):
    """The XEP-0203 delay under a stanza (or <forwarded/>): its raw stamp and from, and the stamp
    as slixmpp parses it (ms since the epoch), to show slixmpp reads the server's format."""
    delay = element['delay']
    raw = delay.xml.get('stamp')
    parsed = delay['stamp']
    return {
        'stamp': raw,
        'stamp_ms': None if parsed is None else round(parsed.timestamp() * 1000),
        'delay_from': delay.xml.get('from'),
    }


def stanza_ids(message):
    return [{'id': e.get('id'), 'by': e.get('by')} for e in message.xml.findall('{%s}stanza-id' % NS_SID)]


class Client(slixmpp.ClientXMPP):
    def __init__(self):
        super().__init__(jid, password)
        self.ssl_context = ssl.create_default_context(cafile=cafile)
        self.finished = asyncio.get_event_loop().create_future()
        self.events = {}
        for plugin in ('xep_0030', 'xep_0059', 'xep_0199', 'xep_0203', 'xep_0297', 'xep_0313', 'xep_0359'):
            self.register_plugin(plugin)
        if mode == 'carbons':
            self.register_plugin('xep_0280')
            self.register_plugin('xep_0334')
        if mode == 'sm':
            self.register_plugin('xep_0198')
            self.sm_enabled = asyncio.get_event_loop().create_future()
            self.add_event_handler('sm_enabled', lambda _: self.sm_enabled.done() or self.sm_enabled.set_result(None))
            self.add_event_handler('sm_failed', lambda _: self.sm_enabled.done() or self.sm_enabled.set_exception(RuntimeError('<failed/>')))
        for name in ('session_start', 'session_resumed', 'sm_enabled', 'sm_failed', 'session_end', 'disconnected'):
            self.add_event_handler(name, self.counter(name))
        self.add_event_handler('failed_all_auth', lambda _: self.fail('authentication failed'))
        self.add_event_handler('session_start', self.start)

    def counter(self, name):
        def count(_event):
            self.events[name] = self.events.get(name, 0) + 1
        return count

    def fail(self, why):
        say(event='error', error=why, events=self.events)
        self.finish()

    def finish(self):
        if not self.finished.done():
            self.finished.set_result(None)

    async def start(self, _event):
        try:
            if mode == 'offline':
                await self.offline(int(extra[0]))
            elif mode == 'mam':
                await self.mam(int(extra[0]), JID(extra[1]), JID(extra[2]))
            elif mode == 'sm':
                await self.sm(*(int(n) for n in extra[0:3]), JID(extra[3]))
            elif mode == 'carbons':
                await self.carbons(JID(extra[0]))
            else:
                self.fail('unknown mode ' + mode)
        except Exception as err:  # the test prints it
            logging.exception('failed')
            self.fail('%s: %s' % (type(err).__name__, err))

    # --- received chat messages (offline and sm) ---------------------------------------------

    def collect(self, expected, then=None):
        """Collect chat messages; `then(count)` runs after each one. Resolves QUIET seconds after
        the `expected`-th, so that duplicates would be seen too."""
        self.received = []
        self.all_received = asyncio.get_event_loop().create_future()

        def on_message(msg):
            if msg['type'] == 'error':
                self.fail('message error: ' + str(msg['error']['condition']))
                return
            if msg['type'] != 'chat':
                return
            item = {'body': msg['body'], 'from': str(msg['from']), 'to': str(msg['to']), 'stanza_ids': stanza_ids(msg)}
            if msg.xml.find('{%s}delay' % NS_DELAY) is not None:
                item.update(stamp_of(msg))
            self.received.append(item)
            if then is not None:
                then(len(self.received))
            if len(self.received) == expected:
                self.loop.call_later(QUIET, lambda: self.all_received.done() or self.all_received.set_result(None))

        self.add_event_handler('message', on_message)

    # --- offline ------------------------------------------------------------------------------

    async def offline(self, count):
        self.collect(count)
        self.send_presence()
        await asyncio.wait_for(self.all_received, 15)
        say(event='done', jid=str(self.boundjid), received=self.received, events=self.events)
        self.finish()

    # --- mam ----------------------------------------------------------------------------------

    def page(self, iq):
        """One page as slixmpp gives it: the result messages it collected, and the <fin/>."""
        fin = iq['mam_fin']
        rsm = fin['rsm']
        results = []
        for message in iq['mam']['results']:
            result = message['mam_result']
            forwarded = result['forwarded']
            original = forwarded['stanza']
            item = {
                'id': result['id'],
                'queryid': result['queryid'],
                'from': str(message['from']),
                'to': str(message['to']),
                'original_from': str(original['from']),
                'original_to': str(original['to']),
                'original_type': original['type'],
                'body': original['body'],
                'stanza_ids': stanza_ids(original),
            }
            item.update(stamp_of(forwarded))
            results.append(item)
        return {
            'complete': fin.xml.get('complete'),
            'first': rsm['first'] or None,
            'first_index': rsm['first_index'] or None,
            'last': rsm['last'] or None,
            'count': rsm['count'] or None,
            'results': results,
        }

    async def mam(self, size, peer, other):
        mam = self['xep_0313']
        report = {}

        # Forwards, as XEP-0313 §"Paging forwards" (RSM <after/> the last id of each page): the
        # plugin's RSM iterator, which stops on its own when first index + page size = count.
        report['forward'] = [self.page(iq) async for iq in mam.retrieve(iterator=True, rsm={'max': size})]

        # Backwards from the end: <before/> empty gives the last page, then <before/> the first
        # id of each page. The iterator only makes the first query: it stops after one page in
        # reverse (its "first index + page size = count" test is true of the last page), so the
        # following ones are plain retrieve() queries with an id in <before/>.
        pages = [self.page(await mam.retrieve(iterator=True, reverse=True, rsm={'max': size}).next())]
        while pages[-1]['complete'] != 'true' and pages[-1]['first'] and len(pages) < 100:
            pages.append(self.page(await mam.retrieve(rsm={'max': size, 'before': pages[-1]['first']})))
        report['backward'] = pages

        # Filtered on one correspondent, forwards.
        report['with_peer'] = [self.page(iq) async for iq in mam.retrieve(iterator=True, with_jid=peer, rsm={'max': size})]

        # The per-message API (slixmpp 1.8), filtered on the other correspondent, 2 per page.
        report['with_other'] = []
        async for message in mam.iterate(with_jid=other, rsm={'max': 2}):
            forwarded = message['mam_result']['forwarded']
            item = {'id': message['mam_result']['id'], 'body': forwarded['stanza']['body'], 'original_from': str(forwarded['stanza']['from'])}
            item.update(stamp_of(forwarded))
            report['with_other'].append(item)

        say(event='done', jid=str(self.boundjid), events=self.events, **report)
        self.finish()

    # --- sm -----------------------------------------------------------------------------------

    async def sm(self, before, during, after, reply_to):
        sm = self['xep_0198']
        # session_start fires on bind; <enable/> (feature order 10100, after bind's 10000) follows.
        await asyncio.wait_for(self.sm_enabled, 10)
        if sm.sm_id is None:
            self.fail('stream management was enabled without resumption')
            return

        def progress(count):
            if count == before:
                # Gone without a word: no </stream:stream>, no TLS close_notify, no final <a/>.
                killed_h = sm.handled
                # SO_LINGER 0: the kernel resets the connection (RST) instead of closing it.
                raw = self.transport.get_extra_info('socket')
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
                self.transport.abort()
                say(event='killed', handled=killed_h)

        self.collect(before + during + after, progress)
        resumed = asyncio.get_event_loop().create_future()
        self.add_event_handler('session_resumed', lambda stanza: resumed.done() or resumed.set_result(
            {'h': stanza.xml.get('h'), 'previd': stanza.xml.get('previd')}))

        self.send_presence()
        await self.get_roster()  # answered after the server has handled the presence
        say(event='ready', jid=str(self.boundjid), sm_id=sm.sm_id)

        line = await self.loop.run_in_executor(None, sys.stdin.readline)
        if line.strip() != 'resume':
            self.fail('expected "resume" on stdin, got %r' % line)
            return
        self.connect(('127.0.0.1', int(port)))
        answer = await asyncio.wait_for(resumed, 10)
        say(event='resumed', jid=str(self.boundjid), sm_id=sm.sm_id, **answer)

        await asyncio.wait_for(self.all_received, 15)
        self.send_message(mto=reply_to, mbody='back after resuming', mtype='chat')
        # An answered ping: the message above has gone out on the resumed stream.
        await self['xep_0199'].ping(self.boundjid.domain, timeout=5)
        # XEP-0198 recommends an <a/> right before closing the stream gracefully, or the server
        # will treat what it sent since the last one as undelivered (offline storage: duplicates
        # at the next login). slixmpp 1.8.3 sends none of its own on disconnect(): send it here.
        sm.send_ack()
        say(event='done', jid=str(self.boundjid), received=self.received, events=self.events, handled=sm.handled)
        self.finish()

    # --- carbons ------------------------------------------------------------------------------

    async def carbons(self, peer):
        def message_of(msg):
            return {'from': str(msg['from']), 'to': str(msg['to']), 'type': msg.xml.get('type'),
                    'id': msg['id'] or None, 'body': msg['body']}

        def report(kind):
            # The plugin fires these only for a carbon whose from has the user's bare JID (full
            # or bare: the test checks which); msg[kind] is the forwarded message (XEP-0297).
            def on_carbon(msg):
                original = msg[kind]
                say(event=kind, **{'from': str(msg['from']), 'to': str(msg['to']), 'type': msg.xml.get('type'),
                                   'forwarded': message_of(original) if original != '' else None})
            return on_carbon

        # Plain functions, not coroutines: slixmpp runs them as each stanza arrives, in order.
        self.add_event_handler('carbon_received', report('carbon_received'))
        self.add_event_handler('carbon_sent', report('carbon_sent'))
        self.add_event_handler('message', lambda msg: say(event='message', **message_of(msg)))

        info = await self['xep_0030'].get_info(jid=self.boundjid.domain)
        self.send_presence()
        await self.get_roster()  # answered after the server has handled the presence
        enabled = await self['xep_0280'].enable()
        say(event='ready', jid=str(self.boundjid), advertised=NS_CARBONS in info['disco_info']['features'],
            enabled=enabled['type'])

        while True:
            line = (await self.loop.run_in_executor(None, sys.stdin.readline)).strip()
            if line == 'disable':
                disabled = await self['xep_0280'].disable()
                say(event='disabled', type=disabled['type'])
            elif line == 'send':
                private = self.make_message(mto=peer, mbody='private from slixmpp', mtype='chat')
                private['id'] = 'slix-private'
                private.enable('carbon_private')
                private.enable('no-copy')
                private.send()
                plain = self.make_message(mto=peer, mbody='copied from slixmpp', mtype='chat')
                plain['id'] = 'slix-plain'
                plain.send()
                say(event='sent')
            elif line == 'done':
                break
            else:
                self.fail('unexpected line on stdin: %r' % line)
                return
        say(event='done', jid=str(self.boundjid), events=self.events)
        self.finish()


async def main():
    client = Client()
    client.connect(('127.0.0.1', int(port)))
    try:
        await asyncio.wait_for(client.finished, 40)
    except asyncio.TimeoutError:
        say(event='error', error='timed out', events=client.events)
    client.disconnect()
    await asyncio.sleep(0.2)


asyncio.get_event_loop().run_until_complete(main())
