import type { Logger } from 'pino';
import type { SaslPolicy } from '../auth/sasl.ts';
import type { Host } from '../router/host.ts';
import type { Router } from '../router/router.ts';
import type { Storage } from '../storage/types.ts';
import type { C2SStream } from './c2s.ts';
import type { SaslLimits } from './sasl-negotiator.ts';

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
  /** A stream bound a resource: register it, replacing any session with the same full JID. */
  sessionOpened(stream: C2SStream): void;
  sessionClosed(stream: C2SStream, clean: boolean): void;
  /** Any stream ended, bound or not. */
  streamClosed(stream: C2SStream): void;
}
