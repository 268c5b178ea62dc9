/**
 * Names that stanzas use all the time (`to`, `from`, `id`, `type`, `xmlns`, `message`...),
 * matched in place in the input by the stream tokenizer (src/xml/parser.ts). Returning the
 * literal instead of a slice of the input saves an allocation and makes the attribute store
 * use an internalised key; CPU profiles showed both.
 */

/** Names of this many characters or more are never looked up. */
export const KNOWN_MAX = 16;

/** Keyed by length * 128 + first character; every key below KNOWN_MAX * 128 has a list. */
const KNOWN: string[][] = [];
for (const name of [
  'to', 'from', 'id', 'type', 'xmlns', 'xml:lang', 'name', 'jid', 'node', 'ver', 'hash', 'var', 'by', 'stamp',
  'subscription', 'ask', 'category', 'version', 'message', 'presence', 'iq', 'body', 'query', 'item', 'show',
  'status', 'priority', 'thread', 'subject', 'error', 'text', 'x', 'c', 'r', 'a', 'enable', 'resume',
  'stanza-id', 'origin-id', 'active', 'composing', 'paused', 'request', 'received', 'displayed', 'markable',
  'delay', 'forwarded', 'result', 'set', 'max', 'before', 'after', 'group', 'identity', 'feature', 'field',
  'value', 'photo', 'nick', 'h', 'auth', 'response', 'mechanism', 'bind', 'resource', 'starttls', 'session',
  'stream:error', 'xmlns:stream', 'queryid', 'role', 'affiliation', 'reason', 'code', 'scope', 'mode', 'push',
  'publish', 'items', 'event', 'retract', 'pubsub', 'approved', 'stream:features',
]) {
  (KNOWN[name.length * 128 + name.charCodeAt(0)] ??= []).push(name);
}
for (let k = 0; k < KNOWN_MAX * 128; k++) KNOWN[k] ??= [];

/** The known name equal to s[from, to) (a name shorter than KNOWN_MAX), if there is one. */
export function known(s: string, from: number, to: number): string | undefined {
  const first = s.charCodeAt(from);
  if (first >= 128) return undefined;
  const names = KNOWN[(to - from) * 128 + first];
  next: for (let k = 0; k < names.length; k++) {
    const name = names[k];
    for (let j = 1; j < name.length; j++) if (name.charCodeAt(j) !== s.charCodeAt(from + j)) continue next;
    return name;
  }
  return undefined;
}
