/** The integration-test harness: import everything from here. */
export { startTestServer, type TestServer, type TestServerOptions } from './server.ts';
export { startServerProcess, freePorts, type ServerProcess, type ServerProcessOptions } from './server-process.ts';
export type { ClientOptions, SessionOptions } from './clients.ts';
export type { TestUser } from './accounts.ts';
export type { ListenerKind } from './test-config.ts';
export {
  ScriptedClient, NS_BIND, NS_SASL, NS_STREAM_ERRORS, NS_TLS,
  type ClientTls, type ExpectOptions, type LoginOptions, type SaslOutcome, type ScriptedConnectOptions,
} from './scripted-client.ts';
export type { ChannelBindingType, SaslMechanism, ScramTamper } from './sasl-client.ts';
export { matches, mismatch, parsePattern, NS_STREAM, WILDCARD } from './xml-match.ts';
export { connectXmppJs, xml, XMPPJS_MECHANISMS, type XmppJsMechanism, type XmppJsOptions, type XmppJsSession } from './xmpp-client.ts';
