/**
 * Reading the configuration: TOML text → validated `Config` (defaults applied, relative
 * paths resolved against the file's folder), and the per-host module list the server loads.
 * Every problem becomes a ConfigError naming the file and the key path, e.g.
 * `meerkat.toml: listen.c2s[0].port: must be an integer between 0 and 65535`.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse, TomlError } from 'smol-toml';
import { z } from 'zod';
import type { ModuleDefinition } from '../modules/api.ts';
import type { StorageOptions } from '../storage/index.ts';
import { allModules } from '../modules/index.ts';
import { configSchema, type Config, type ModuleTable } from './schema.ts';

/** The file `loadConfig()` reads when none is named, relative to the working directory. */
export const DEFAULT_CONFIG_FILE = 'meerkat.toml';

export interface ConfigProblem {
  /** Dotted key path, e.g. `listen.c2s[0].port` ('' for the whole file). */
  path: string;
  message: string;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly file: string;
  readonly problems: ConfigProblem[];

  constructor(file: string, problems: ConfigProblem[]) {
    const lines = problems.map((p) => (p.path === '' ? p.message : `${p.path}: ${p.message}`));
    super(lines.length === 1 ? `${file}: ${lines[0]}` : `${file}: ${lines.length} problems: ${lines.join('; ')}`);
    this.file = file;
    this.problems = problems;
  }
}

/** `['listen', 'c2s', 0, 'port']` → `listen.c2s[0].port`. */
export function formatPath(keys: readonly PropertyKey[]): string {
  let out = '';
  for (const key of keys) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out;
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Date) return 'a date';
  if (typeof value === 'object') return 'a table';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  return `${typeof value} ${String(value)}`;
}

const TYPE_NAMES: Record<string, string> = { object: 'a table', array: 'an array', string: 'a string', number: 'a number', int: 'an integer', boolean: 'true or false' };

/** Messages for issues whose schema sets none: plain words, TOML vocabulary. */
const errorMap: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'required';
      return `expected ${TYPE_NAMES[issue.expected] ?? issue.expected}, got ${describeValue(issue.input)}`;
    case 'too_small': {
      const bound = `${issue.inclusive === false ? 'more than' : 'at least'} ${String(issue.minimum)}`;
      if (issue.origin === 'string') return `must be ${bound} characters long`;
      if (issue.origin === 'array') return `must have ${bound} items`;
      return `must be ${bound}`;
    }
    case 'too_big': {
      const bound = `${issue.inclusive === false ? 'less than' : 'at most'} ${String(issue.maximum)}`;
      if (issue.origin === 'string') return `must be ${bound} characters long`;
      if (issue.origin === 'array') return `must have ${bound} items`;
      return `must be ${bound}`;
    }
    case 'invalid_value':
      return `must be ${issue.values.length === 1 ? '' : 'one of '}${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'invalid_format':
      return issue.format === 'url' ? 'must be a URL' : `must be a valid ${issue.format}`;
    default:
      return undefined;
  }
};

// ---- unknown keys: name each one, and suggest the nearest known key ----

function unwrap(schema: z.core.$ZodType): z.core.$ZodType {
  let current = schema;
  for (;;) {
    const def = current._zod.def as { type: string; innerType?: z.core.$ZodType; in?: z.core.$ZodType };
    if (def.innerType !== undefined) current = def.innerType;
    else if (def.type === 'pipe' && def.in !== undefined) current = def.in;
    else return current;
  }
}

/** The object schema at a key path of the config, to list the keys it allows. */
function knownKeys(keys: readonly PropertyKey[]): string[] {
  let schema = unwrap(configSchema);
  for (const key of keys) {
    const def = schema._zod.def as { type: string; shape?: Record<string, z.core.$ZodType>; element?: z.core.$ZodType };
    if (typeof key === 'number' && def.type === 'array' && def.element) schema = unwrap(def.element);
    else if (def.type === 'object' && def.shape && typeof key === 'string' && def.shape[key]) schema = unwrap(def.shape[key]);
    else return [];
  }
  const def = schema._zod.def as { type: string; shape?: Record<string, unknown> };
  return def.type === 'object' && def.shape ? Object.keys(def.shape) : [];
}

/** Edit distance counting a swap of neighbours as one edit (optimal string alignment). */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

function unknownKeyMessage(parent: readonly PropertyKey[], key: string): string {
  const known = knownKeys(parent);
  const isModules = (parent.length === 1 && parent[0] === 'modules') || (parent.length === 3 && parent[0] === 'host_config' && parent[2] === 'modules');
  const what = isModules ? 'unknown module' : 'unknown key';
  const near = known.filter((k) => distance(k, key) <= Math.max(1, Math.floor(key.length / 4)));
  if (near.length > 0) return `${what}; did you mean ${near.map((k) => JSON.stringify(k)).join(' or ')}?`;
  if (known.length === 0) return `${what}: this table takes no keys`;
  return `${what} (expected ${isModules ? 'one of' : 'keys'}: ${known.join(', ')})`;
}

function problemsOf(error: z.ZodError): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) problems.push({ path: formatPath([...issue.path, key]), message: unknownKeyMessage(issue.path, key) });
    } else {
      problems.push({ path: formatPath(issue.path), message: issue.message });
    }
  }
  return problems;
}

// ---- parsing ----

/** Relative paths in a file are relative to the file's folder, not to the working directory. */
function resolvePaths(config: Config, file: string): Config {
  const base = path.dirname(path.resolve(file));
  const at = (p: string) => path.resolve(base, p);
  const atOpt = (p: string | undefined) => (p === undefined ? undefined : at(p));
  return {
    ...config,
    general: { ...config.general, data_dir: at(config.general.data_dir) },
    tls: { ...config.tls, certfile: atOpt(config.tls.certfile), keyfile: atOpt(config.tls.keyfile) },
    listen: {
      ...config.listen,
      c2s: config.listen.c2s.map((l) => ({ ...l, tls: { ...l.tls, certfile: atOpt(l.tls.certfile), keyfile: atOpt(l.tls.keyfile) } })),
    },
  };
}

/** Validates TOML text; `file` names it in errors and anchors its relative paths. */
export function parseConfig(text: string, file: string): Config {
  let data: unknown;
  try {
    data = parse(text);
  } catch (err) {
    if (err instanceof TomlError) {
      const first = err.message.split('\n')[0].replace(/^Invalid TOML document:\s*/i, '');
      throw new ConfigError(`${file}:${err.line}:${err.column}`, [{ path: '', message: `TOML syntax error: ${first}` }]);
    }
    throw err;
  }
  const result = configSchema.safeParse(data, { error: errorMap });
  if (!result.success) throw new ConfigError(file, problemsOf(result.error));
  return resolvePaths(result.data, file);
}

/**
 * Reads and validates a config file. With no file: `./meerkat.toml` when it exists, else
 * the built-in defaults (a server for `localhost`, data in `./data`).
 */
export async function loadConfig(file?: string): Promise<Config> {
  if (file === undefined) {
    if (!existsSync(DEFAULT_CONFIG_FILE)) return parseConfig('', path.resolve(DEFAULT_CONFIG_FILE));
    file = DEFAULT_CONFIG_FILE;
  }
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
    throw new ConfigError(file, [{ path: '', message: `cannot read the config file: ${why}` }]);
  }
  return parseConfig(text, file);
}

/** The table that applies to a module on a host: the host's own, else the global one. */
function moduleTable(config: Config, domain: string, name: string): ModuleTable | undefined {
  const override = config.host_config.find((entry) => entry.host === domain);
  return override?.modules[name] ?? config.modules[name];
}

/**
 * The modules to load on `domain`, in allModules order, each with its config (defaults
 * applied, `enabled` removed). A module is on when its table says so or, without a table,
 * unless it is off by default.
 */
export function modulesForHost(
  config: Config,
  domain: string,
  modules: readonly ModuleDefinition[] = allModules,
): { definition: ModuleDefinition; config: unknown }[] {
  if (!config.general.hosts.includes(domain)) throw new Error(`${domain} is not one of the configured hosts`);
  const out: { definition: ModuleDefinition; config: unknown }[] = [];
  for (const definition of modules) {
    const table = moduleTable(config, domain, definition.name);
    const enabled = table === undefined ? definition.enabledByDefault !== false : table.enabled !== false;
    if (!enabled) continue;
    if (table === undefined) {
      const parsed = definition.config.safeParse({}, { error: errorMap });
      if (!parsed.success) {
        // A module on by default must work without a table; one that cannot needs its keys.
        throw new ConfigError('configuration', problemsOf(parsed.error).map((p) => ({ ...p, path: formatPath(['modules', definition.name]) + (p.path ? `.${p.path}` : '') })));
      }
      out.push({ definition, config: parsed.data });
    } else {
      const { enabled: _enabled, ...moduleConfig } = table;
      out.push({ definition, config: moduleConfig });
    }
  }
  return out;
}

/** How to open the configured storage (the sqlite path resolved against data_dir). */
export function storageOptions(config: Config): StorageOptions {
  const { storage, general } = config;
  return storage.backend === 'postgres'
    ? { backend: 'postgres', url: storage.postgres.url!, poolSize: storage.postgres.pool_size, schema: storage.postgres.schema }
    : { backend: 'sqlite', path: path.resolve(general.data_dir, storage.sqlite.path) };
}
