import type { Logger } from 'pino';
import type { SaslPolicy } from '../auth/sasl.ts';
import type { Host } from '../router/host.ts';
import type { Router } from '../router/router.ts';
import type { Storage } from '../storage/types.ts';
import type { C2SStream } from './c2s.ts';
import type { ResumableSessions } from './resumption.ts';
import type { SaslLimits } from './sasl-negotiator.ts';
import type { SmSettings } from './stream-management.ts';

/** What every c2s stream of one listener shares. */
export interface StreamEnvironment {
  hosts: Map<string, Host>;
  /** Used in the header of a stream whose `to` is unknown, to send it an error. */
  defaultDomain: string;
  router: Router;
  storage: Storage;
  log: Logger;
  tlsRequired: boolean;
  saslPolicy: SaslPolicy;
  saslLimits: SaslLimits;
  limits: { authTimeoutMs: number; idleTimeoutMs: number; pingTimeoutMs: number };
  /** XEP-0198 settings. */
  streamManagement: SmSettings;
  /** Resumable sessions, shared by every listener. */
  resumable: ResumableSessions<C2SStream>;
  /** A stream bound a resource: register it, replacing any session with the same full JID. */
  sessionOpened(stream: C2SStream): void;
  sessionClosed(stream: C2SStream, clean: boolean): void;
  /** Any stream ended, bound or not (a stream whose connection a resumed session took over included). */
  streamClosed(stream: C2SStream): void;
  /** Work a session's end left running (undelivered stanzas going to storage): shutdown waits for it. */
  track(work: Promise<unknown> | undefined): void;
}
