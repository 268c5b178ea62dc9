/**
 * The configuration: defaults, validation errors that name their key, per-host module
 * tables, the shipped example and the generated reference staying in step with the schema.
 */
import { strict as assert } from 'node:assert';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadConfig, modulesForHost, parseConfig, storageOptions } from '../../src/config/load.ts';
import { generateReference, REFERENCE_FILE, REGENERATE_COMMAND } from '../../src/config/reference.ts';
import { SUPPORTED_MECHANISMS } from '../../src/auth/sasl.ts';
import { allModules } from '../../src/modules/index.ts';
import { configSchema } from '../../src/config/schema.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FILE = '/etc/meerkat/meerkat.toml';

/** The ConfigError `text` raises (fails if it parses). */
function errorOf(text: string): ConfigError {
  try {
    parseConfig(text, FILE);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail(`expected a ConfigError for:\n${text}`);
}

/** Asserts `text` is refused with a problem at `key` whose message matches `message`. */
function rejects(text: string, key: string, message: RegExp): void {
  const error = errorOf(text);
  const problem = error.problems.find((p) => p.path === key);
  assert.ok(problem, `no problem reported at ${key}; got: ${error.message}`);
  assert.match(problem.message, message);
  assert.ok(error.message.startsWith(`${FILE}: `), `the message names the file: ${error.message}`);
  assert.ok(error.message.includes(`${key}: `), `the message names the key: ${error.message}`);
}

const names = (config: ReturnType<typeof parseConfig>, host: string) => modulesForHost(config, host).map((m) => m.definition.name);

describe('configuration defaults', () => {
  it('an empty file is a working server for localhost on SQLite', () => {
    const config = parseConfig('', FILE);
    assert.deepEqual(config.general, {
      hosts: ['localhost'],
      data_dir: '/etc/meerkat/data',
      loglevel: 'info',
      max_stanza_size: 262_144,
      max_xml_depth: 32,
      shutdown_timeout: 10,
    });
    assert.equal(config.tls.certfile, undefined);
    assert.equal(config.tls.keyfile, undefined);
    assert.equal(config.tls.min_version, 'TLSv1.2');
    assert.deepEqual(config.listen.c2s.map((l) => [l.port, l.address, l.tls.mode]), [[5222, '0.0.0.0', 'starttls_required'], [5223, '0.0.0.0', 'direct']]);
    const [listener] = config.listen.c2s;
    assert.equal(listener.max_connections, 10_000);
    assert.equal(listener.max_connections_per_address, 100);
    assert.equal(listener.auth_timeout, 30);
    assert.equal(listener.idle_timeout, 300);
    assert.equal(listener.ping_timeout, 30);
    assert.equal(listener.max_stanza_size, undefined);
    assert.equal(listener.rate_limit.bytes_per_second, 102_400);
    assert.deepEqual(config.auth, {
      sasl_mechanisms: [...SUPPORTED_MECHANISMS],
      plain_without_tls: false,
      max_attempts: 3,
      failures_per_address: 20,
      failures_per_account: 10,
      scram_iterations: 4096,
    });
    assert.equal(config.storage.backend, 'sqlite');
    assert.deepEqual(storageOptions(config), { backend: 'sqlite', path: '/etc/meerkat/data/meerkat.sqlite' });
    assert.deepEqual(config.host_config, []);
  });

  it('loads every module that is on by default, with its defaults; register only on request', () => {
    const config = parseConfig('', FILE);
    const loaded = modulesForHost(config, 'localhost');
    assert.deepEqual(loaded.map((m) => m.definition.name), allModules.filter((m) => m.enabledByDefault !== false).map((m) => m.name));
    assert.ok(!loaded.some((m) => m.definition.name === 'register'));
    for (const { definition, config: moduleConfig } of loaded) assert.deepEqual(moduleConfig, definition.config.parse({}));
  });

  it('resolves relative paths against the config file and keeps absolute ones', () => {
    const config = parseConfig(`
      [general]
      data_dir = "state"
      [tls]
      certfile = "tls/cert.pem"
      keyfile = "/secure/key.pem"
      [[listen.c2s]]
      port = 5222
      tls.certfile = "other.pem"
      tls.keyfile = "other.key"
    `, FILE);
    assert.equal(config.general.data_dir, '/etc/meerkat/state');
    assert.equal(config.tls.certfile, '/etc/meerkat/tls/cert.pem');
    assert.equal(config.tls.keyfile, '/secure/key.pem');
    assert.equal(config.listen.c2s[0].tls.certfile, '/etc/meerkat/other.pem');
  });

  it('fills the defaults of a listener that only names its port', () => {
    const config = parseConfig('[[listen.c2s]]\nport = 0\n', FILE);
    assert.equal(config.listen.c2s.length, 1);
    assert.equal(config.listen.c2s[0].tls.mode, 'starttls_required');
    assert.equal(config.listen.c2s[0].address, '0.0.0.0');
  });

  it('PostgreSQL settings become the storage options', () => {
    const config = parseConfig('[storage]\nbackend = "postgres"\npostgres.url = "postgres://u:p@db/meerkat"\npostgres.pool_size = 4\n', FILE);
    assert.deepEqual(storageOptions(config), { backend: 'postgres', url: 'postgres://u:p@db/meerkat', poolSize: 4, schema: 'public' });
    const inSchema = parseConfig('[storage]\nbackend = "postgres"\npostgres.url = "postgres://db/x"\npostgres.schema = "meerkat_ward"\n', FILE);
    const options = storageOptions(inSchema);
    assert.equal(options.backend === 'postgres' ? options.schema : undefined, 'meerkat_ward');
    assert.throws(() => parseConfig('[storage]\npostgres.schema = "Bad-Name"\n', FILE), /storage\.postgres\.schema/);
  });
});

describe('configuration errors name their key', () => {
  it('out-of-range and mistyped values', () => {
    rejects('[[listen.c2s]]\nport = 70000', 'listen.c2s[0].port', /^must be an integer between 0 and 65535$/);
    rejects('[[listen.c2s]]\nport = 5222\n[[listen.c2s]]\nport = "5223"', 'listen.c2s[1].port', /integer between 0 and 65535/);
    rejects('[[listen.c2s]]\naddress = "::"', 'listen.c2s[0].port', /^required$/);
    rejects('[general]\nmax_stanza_size = 100', 'general.max_stanza_size', /between 10000 and/);
    rejects('[general]\nmax_xml_depth = 2.5', 'general.max_xml_depth', /integer/);
    rejects('[general]\nshutdown_timeout = 0', 'general.shutdown_timeout', /greater than 0/);
    rejects('[general]\nloglevel = "verbose"', 'general.loglevel', /one of "fatal", .*"info"/);
    rejects('[general]\nhosts = "example.org"', 'general.hosts', /expected an array, got the string "example.org"/);
    rejects('[general]\nhosts = []', 'general.hosts', /at least one domain/);
    rejects('[general]\nhosts = ["bad domain"]', 'general.hosts[0]', /not a valid domain name/);
    rejects('[general]\nhosts = ["a.test", "A.Test."]', 'general.hosts[1]', /"a.test" is listed twice/);
    rejects('[tls]\nmin_version = "TLSv1.1"', 'tls.min_version', /"TLSv1.2", "TLSv1.3"/);
    rejects('[[listen.c2s]]\nport = 5222\ntls.mode = "tls"', 'listen.c2s[0].tls.mode', /"starttls_required", "starttls", "direct", "none"/);
    rejects('[[listen.c2s]]\nport = 5222\nidle_timeout = -1', 'listen.c2s[0].idle_timeout', /seconds greater than 0/);
    rejects('[[listen.c2s]]\nport = 5222\nrate_limit.bytes_per_second = -1', 'listen.c2s[0].rate_limit.bytes_per_second', /between 0 and/);
    rejects('[[listen.c2s]]\nport = 5222\n[[listen.c2s]]\nport = 5222', 'listen.c2s[1].port', /already used by listen.c2s\[0\]/);
    rejects('[auth]\nsasl_mechanisms = ["PLAIN", "DIGEST-MD5"]', 'auth.sasl_mechanisms[1]', /one of "SCRAM-SHA-512-PLUS"/);
    rejects('[auth]\nsasl_mechanisms = []', 'auth.sasl_mechanisms', /at least one mechanism/);
    rejects('[auth]\nscram_iterations = 1000', 'auth.scram_iterations', /between 4096 and/);
    rejects('[auth]\nplain_without_tls = "yes"', 'auth.plain_without_tls', /expected true or false/);
    rejects('[auth]\nmax_attempts = 0', 'auth.max_attempts', /between 1 and 100/);
  });

  it('certfile and keyfile come in pairs', () => {
    rejects('[tls]\ncertfile = "cert.pem"', 'tls.keyfile', /required when certfile is set/);
    rejects('[tls]\nkeyfile = "key.pem"', 'tls.certfile', /required when keyfile is set/);
    rejects('[[listen.c2s]]\nport = 1\ntls.certfile = "c.pem"', 'listen.c2s[0].tls.keyfile', /required when certfile is set/);
  });

  it('PostgreSQL needs a URL', () => {
    rejects('[storage]\nbackend = "postgres"', 'storage.postgres.url', /required when storage.backend = "postgres"/);
    rejects('[storage]\nbackend = "postgres"\npostgres.url = "mysql://x"', 'storage.postgres.url', /postgres:\/\//);
    rejects('[storage]\nbackend = "mysql"', 'storage.backend', /"sqlite", "postgres"/);
  });

  it('unknown keys and tables anywhere, with a suggestion when one is close', () => {
    rejects('[general]\nhost = ["a.test"]', 'general.host', /unknown key; did you mean "hosts"\?/);
    rejects('[genral]\nhosts = ["a.test"]', 'genral', /did you mean "general"/);
    rejects('[[listen.c2s]]\nport = 5222\ntls.mdoe = "direct"', 'listen.c2s[0].tls.mdoe', /did you mean "mode"/);
    rejects('[[listen.c2s]]\nport = 5222\nfoo = 1', 'listen.c2s[0].foo', /unknown key \(expected keys: port, address/);
    rejects('[storage.sqlite]\nfile = "x"', 'storage.sqlite.file', /unknown key/);
    rejects('[modules.roster]\nmax_itemz = 3', 'modules.roster.max_itemz', /did you mean "max_items"/);
    rejects('[modules.ping]\ninterval = 3', 'modules.ping.interval', /unknown key/);
    rejects('[[listen.s2s]]\nport = 5269', 'listen.s2s', /unknown key/);
  });

  it('module values are checked by the module\'s schema', () => {
    rejects('[modules.roster]\nmax_items = 0', 'modules.roster.max_items', /at least 1/);
    rejects('[modules.roster]\nenabled = "no"', 'modules.roster.enabled', /true or false/);
  });

  it('unknown module names', () => {
    rejects('[modules.rooster]', 'modules.rooster', /^unknown module; did you mean "roster"\?$/);
    rejects('[modules.mod_inbox_xyz]', 'modules.mod_inbox_xyz', /^unknown module \(expected one of: roster, /);
    rejects('[general]\nhosts = ["a.test"]\n[[host_config]]\nhost = "a.test"\n[host_config.modules.nope]', 'host_config[0].modules.nope', /unknown module/);
  });

  it('host_config names a served host, once', () => {
    rejects('[general]\nhosts = ["a.test"]\n[[host_config]]\nhost = "b.test"', 'host_config[0].host', /"b.test" is not one of general.hosts/);
    rejects('[general]\nhosts = ["a.test"]\n[[host_config]]\nhost = "a.test"\n[[host_config]]\nhost = "A.TEST"', 'host_config[1].host', /already has host_config\[0\]/);
    rejects('[general]\nhosts = ["a.test"]\n[[host_config]]\n[host_config.modules.ping]', 'host_config[0].host', /required/);
  });

  it('reports every problem at once', () => {
    const error = errorOf('[general]\nloglevel = "loud"\nmax_xml_depth = 0\n[auth]\nmax_attempts = 0');
    assert.deepEqual(error.problems.map((p) => p.path).sort(), ['auth.max_attempts', 'general.loglevel', 'general.max_xml_depth']);
    assert.match(error.message, /^\/etc\/meerkat\/meerkat.toml: 3 problems: /);
  });

  it('TOML syntax errors give the line and column', () => {
    const error = errorOf('[general]\nhosts = ["a.test"\n');
    assert.match(error.message, /^\/etc\/meerkat\/meerkat.toml:\d+:\d+: TOML syntax error: /);
  });
});

describe('two domains and per-host module tables', () => {
  const text = `
    [general]
    hosts = ["Hospital.Example.org", "partners.example.org"]
    [modules.version]
    show_os = true
    [modules.roster]
    max_items = 200
    [[host_config]]
    host = "partners.example.org"
      [host_config.modules.register]
      min_password_length = 12
      [host_config.modules.version]
      enabled = false
      [host_config.modules.roster]
      versioning = false
  `;

  it('normalises the domains', () => {
    assert.deepEqual(parseConfig(text, FILE).general.hosts, ['hospital.example.org', 'partners.example.org']);
  });

  it('global tables apply to every host that has no table of its own', () => {
    const config = parseConfig(text, FILE);
    const hospital = modulesForHost(config, 'hospital.example.org');
    assert.ok(!hospital.some((m) => m.definition.name === 'register'), 'register stays off by default');
    assert.deepEqual(hospital.find((m) => m.definition.name === 'version')?.config, { show_os: true });
    assert.equal((hospital.find((m) => m.definition.name === 'roster')?.config as { max_items: number }).max_items, 200);
  });

  it('a host_config table replaces the global one entirely, and can switch modules on and off', () => {
    const config = parseConfig(text, FILE);
    const partners = modulesForHost(config, 'partners.example.org');
    const names = partners.map((m) => m.definition.name);
    assert.ok(names.includes('register'), 'register switched on by its table');
    assert.ok(!names.includes('version'), 'version switched off for this host');
    const register = partners.find((m) => m.definition.name === 'register')!.config as Record<string, unknown>;
    assert.equal(register.min_password_length, 12);
    assert.equal(register.allow_registration, true, 'defaults applied');
    assert.equal('enabled' in register, false, '`enabled` is not part of the module config');
    const roster = partners.find((m) => m.definition.name === 'roster')!.config as { versioning: boolean; max_items: number };
    assert.equal(roster.versioning, false);
    assert.equal(roster.max_items, 5000, 'the global max_items = 200 does not leak into the replacing table');
  });

  it('keeps allModules order, and enabled = false turns a module off everywhere', () => {
    const config = parseConfig('[modules.ping]\nenabled = false\n[modules.register]\nenabled = true\n', FILE);
    const loaded = names(config, 'localhost');
    assert.ok(!loaded.includes('ping'));
    assert.ok(loaded.includes('register'));
    const order = allModules.map((m) => m.name);
    assert.deepEqual(loaded, order.filter((n) => loaded.includes(n)));
  });

  it('refuses a host it does not serve', () => {
    assert.throws(() => modulesForHost(parseConfig('', FILE), 'elsewhere.test'), /not one of the configured hosts/);
  });
});

describe('loadConfig', () => {
  it('reads a file, reports a missing one, and falls back to ./meerkat.toml or the defaults', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'meerkat-config-'));
    const cwd = process.cwd();
    try {
      const file = path.join(dir, 'custom.toml');
      await writeFile(file, '[general]\nhosts = ["file.test"]\n');
      assert.deepEqual((await loadConfig(file)).general.hosts, ['file.test']);
      await assert.rejects(loadConfig(path.join(dir, 'missing.toml')), (err: Error) => err instanceof ConfigError && /missing\.toml: cannot read the config file: no such file/.test(err.message));

      process.chdir(dir);
      const defaults = await loadConfig();
      assert.deepEqual(defaults.general.hosts, ['localhost']);
      assert.equal(defaults.general.data_dir, path.join(process.cwd(), 'data'));
      await writeFile(path.join(dir, 'meerkat.toml'), '[general]\nhosts = ["cwd.test"]\n');
      assert.deepEqual((await loadConfig()).general.hosts, ['cwd.test']);
    } finally {
      process.chdir(cwd);
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('shipped files', () => {
  it('meerkat.example.toml is valid and serves two domains', async () => {
    const file = path.join(ROOT, 'meerkat.example.toml');
    const config = parseConfig(await readFile(file, 'utf8'), file);
    assert.equal(config.general.hosts.length, 2);
    assert.ok(config.host_config.length > 0, 'shows a [[host_config]] table');
    for (const host of config.general.hosts) assert.ok(modulesForHost(config, host).length > 0);
  });

  it(`docs/configuration.md is up to date (regenerate with: ${REGENERATE_COMMAND})`, async () => {
    const committed = await readFile(REFERENCE_FILE, 'utf8').catch(() => '');
    const generated = generateReference();
    assert.ok(committed === generated, `docs/configuration.md differs from the schemas: run \`${REGENERATE_COMMAND}\` and commit the result`);
  });

  it('the reference has a section for every top-level table', () => {
    const reference = generateReference();
    for (const key of Object.keys(configSchema.shape)) {
      assert.ok(reference.includes(`## \`[${key}]\``) || reference.includes(`## \`[[${key}`) || reference.includes(`[${key}.`), `section for [${key}]`);
    }
  });

  it('the reference documents every key of every module', () => {
    const reference = generateReference();
    for (const definition of allModules) {
      assert.ok(reference.includes(`[modules.${definition.name}]`), `section for ${definition.name}`);
      const shape = (definition.config as unknown as { shape: Record<string, { description?: string }> }).shape;
      for (const [key, schema] of Object.entries(shape)) {
        assert.ok(reference.includes(`| \`${key}\` |`), `${definition.name}.${key} documented`);
        assert.ok(schema.description, `${definition.name}.${key} has a .describe() text`);
      }
    }
  });
});
