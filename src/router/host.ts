import type { Logger } from 'pino';
import type { XmlElement } from '../xml/element.ts';
import type {
  DiscoIdentity, HookEvents, HookHandler, HookName, IqHandler, IqRoute, ModuleContext,
  ModuleDefinition, ModuleServices, PreAuthStream, Session,
} from '../modules/api.ts';
import type { Storage, UserRef } from '../storage/types.ts';
import type { Accounts } from '../auth/accounts.ts';
import { HookBus } from './hooks.ts';
import type { Jid } from './jid.ts';

export interface HostEnvironment {
  storage: Storage;
  accounts: Accounts;
  log: Logger;
  server: { name: string; version: string; startedAt: Date };
  route(stanza: XmlElement): void;
  sessionsOf(user: UserRef): Session[];
  sessionByJid(jid: Jid): Session | undefined;
}

type StreamFeature = XmlElement | (() => XmlElement | undefined);
type PreAuthHandler = (stanza: XmlElement, stream: PreAuthStream) => Promise<boolean>;

export function iqRouteKey(target: IqRoute['target'], type: string, xmlns: string | undefined, element: string): string {
  return `${target} ${type} ${xmlns ?? ''} ${element}`;
}

/**
 * One virtual host: its hook bus, IQ handlers, disco data and stream features, filled in by
 * the modules enabled for it.
 */
export class Host {
  readonly domain: string;
  readonly hooks = new HookBus();
  private readonly iqHandlers = new Map<string, IqHandler>();
  private readonly preAuthHandlers = new Map<string, PreAuthHandler>();
  private readonly nonzaHandlers = new Map<string, (element: XmlElement, session: Session) => void>();
  private readonly features = { host: new Set<string>(), account: new Set<string>() };
  private readonly identities: Record<'host' | 'account', DiscoIdentity[]> = { host: [], account: [] };
  private readonly streamFeatures: { beforeAuth: StreamFeature[]; afterAuth: StreamFeature[] } = { beforeAuth: [], afterAuth: [] };
  private readonly services: Partial<ModuleServices> = {};
  private readonly stopCallbacks: (() => void | Promise<void>)[] = [];
  private readonly env: HostEnvironment;

  constructor(domain: string, env: HostEnvironment) {
    this.domain = domain;
    this.env = env;
    this.identities.host.push({ category: 'server', type: 'im', name: env.server.name });
    this.identities.account.push({ category: 'account', type: 'registered' });
  }

  async load(definition: ModuleDefinition, config: unknown): Promise<void> {
    await definition.setup(this.contextFor(definition.name, config));
  }

  iqHandler(target: IqRoute['target'], type: string, payload: XmlElement): IqHandler | undefined {
    return this.iqHandlers.get(iqRouteKey(target, type, payload.attrs.xmlns, payload.name));
  }

  nonzaHandler(xmlns: string | undefined): ((element: XmlElement, session: Session) => void) | undefined {
    return xmlns === undefined ? undefined : this.nonzaHandlers.get(xmlns);
  }

  preAuthHandler(xmlns: string | undefined): PreAuthHandler | undefined {
    return xmlns === undefined ? undefined : this.preAuthHandlers.get(xmlns);
  }

  streamFeaturesFor(authenticated: boolean): XmlElement[] {
    const out: XmlElement[] = [];
    for (const feature of authenticated ? this.streamFeatures.afterAuth : this.streamFeatures.beforeAuth) {
      const element = typeof feature === 'function' ? feature() : feature;
      if (element !== undefined) out.push(element);
    }
    return out;
  }

  discoInfo(target: 'host' | 'account'): { features: string[]; identities: DiscoIdentity[] } {
    return { features: [...this.features[target]].sort(), identities: this.identities[target] };
  }

  async stop(): Promise<void> {
    for (const fn of this.stopCallbacks.reverse()) await fn();
  }

  private contextFor<C>(moduleName: string, config: C): ModuleContext<C> {
    const host = this;
    const env = this.env;
    return {
      host: this.domain,
      config,
      log: env.log.child({ module: moduleName, host: this.domain }),
      storage: env.storage,
      accounts: env.accounts,
      server: env.server,
      hook<K extends HookName>(name: K, handler: HookHandler<K>, priority?: number) {
        host.hooks.on(name, handler, priority);
      },
      async fire<K extends HookName>(name: K, event: HookEvents[K]) {
        return host.hooks.fire(name, event);
      },
      handleIq(route, handler) {
        const key = iqRouteKey(route.target, route.type, route.xmlns, route.element);
        if (host.iqHandlers.has(key)) throw new Error(`${moduleName}: IQ ${key} is already handled`);
        host.iqHandlers.set(key, handler);
      },
      route: (stanza) => env.route(stanza),
      sessionsOf: (user) => env.sessionsOf(user),
      sessionByJid: (jid) => env.sessionByJid(jid),
      addFeature(xmlns, target = 'host') {
        host.features[target].add(xmlns);
      },
      addIdentity(identity, target = 'host') {
        host.identities[target].push(identity);
      },
      discoInfo: (target) => host.discoInfo(target),
      addStreamFeature(feature, options = {}) {
        (options.beforeAuth ? host.streamFeatures.beforeAuth : host.streamFeatures.afterAuth).push(feature);
      },
      handlePreAuthIq(xmlns, handler) {
        host.preAuthHandlers.set(xmlns, handler);
      },
      handleNonza(xmlns, handler) {
        if (host.nonzaHandlers.has(xmlns)) throw new Error(`${moduleName}: nonzas of ${xmlns} are already handled`);
        host.nonzaHandlers.set(xmlns, handler);
      },
      provide(name, service) {
        host.services[name] = service;
      },
      use(name) {
        return host.services[name];
      },
      onStop(fn) {
        host.stopCallbacks.push(fn);
      },
    };
  }
}
