/**
 * Generates the Markdown configuration reference (docs/configuration.md) from the zod
 * schemas: every key with its type, bounds, default and `.describe()` text, module tables
 * included. A test fails when the committed file differs from this output.
 *
 *   node --import tsx src/config/reference.ts            # print to stdout
 *   node --import tsx src/config/reference.ts --write    # rewrite docs/configuration.md
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import type { ModuleDefinition } from '../modules/api.ts';
import { allModules } from '../modules/index.ts';
import { buildConfigSchema, domainSchema, moduleTableSchema } from './schema.ts';

export const REFERENCE_FILE = fileURLToPath(new URL('../../docs/configuration.md', import.meta.url));
export const REGENERATE_COMMAND = 'npm run docs:config';

type Schema = z.core.$ZodType;
interface Def {
  type: string;
  innerType?: Schema;
  defaultValue?: unknown;
  shape?: Record<string, Schema>;
  element?: Schema;
  entries?: Record<string, string | number>;
  values?: unknown[];
  in?: Schema;
  out?: Schema;
  format?: string;
  checks?: { _zod: { def: CheckDef } }[];
}
interface CheckDef {
  check: string;
  value?: number;
  inclusive?: boolean;
  minimum?: number;
  maximum?: number;
  format?: string;
  pattern?: RegExp;
}

const defOf = (schema: Schema) => schema._zod.def as unknown as Def;
const DOMAIN_TRANSFORM = defOf(domainSchema).out;

interface Field {
  schema: Schema;
  description: string | undefined;
  /** 'required', 'optional' or a default value. */
  presence: { kind: 'required' } | { kind: 'optional' } | { kind: 'default'; value: unknown };
}

/** Strips default/prefault/optional wrappers, keeping the first description and default met. */
function field(schema: Schema): Field {
  let description: string | undefined;
  let presence: Field['presence'] = { kind: 'required' };
  let current = schema;
  for (;;) {
    description ??= z.globalRegistry.get(current)?.description;
    const def = defOf(current);
    if (def.type === 'default' || def.type === 'prefault') {
      if (presence.kind === 'required') presence = { kind: 'default', value: def.defaultValue };
      current = def.innerType!;
    } else if (def.type === 'optional') {
      if (presence.kind === 'required') presence = { kind: 'optional' };
      current = def.innerType!;
    } else {
      return { schema: current, description, presence };
    }
  }
}

const isObject = (schema: Schema) => defOf(schema).type === 'object';

function bounds(checks: CheckDef[], unit: string): string[] {
  const out: string[] = [];
  let low: CheckDef | undefined;
  let high: CheckDef | undefined;
  for (const check of checks) {
    if (check.check === 'greater_than') low = check;
    if (check.check === 'less_than') high = check;
  }
  if (low && high && low.inclusive && high.inclusive) return [`${fmt(low.value!)}–${fmt(high.value!)}${unit}`];
  if (low) out.push(`${low.inclusive ? '≥' : '>'} ${fmt(low.value!)}${unit}`);
  if (high) out.push(`${high.inclusive ? '≤' : '<'} ${fmt(high.value!)}${unit}`);
  return out;
}

function fmt(n: number): string {
  return Number.isInteger(n) && Math.abs(n) >= 10_000 ? n.toLocaleString('en-US').replaceAll(',', '_') : String(n);
}

/** A short human description of a value's type and bounds. */
export function typeName(schema: Schema): string {
  const def = defOf(schema);
  const checks = (def.checks ?? []).map((c) => c._zod.def);
  switch (def.type) {
    case 'string': {
      if (def.format === 'url' || checks.some((c) => c.format === 'url')) return 'URL';
      const pattern = checks.find((c) => c.format === 'regex')?.pattern;
      const min = checks.find((c) => c.check === 'min_length')?.minimum;
      const max = checks.find((c) => c.check === 'max_length')?.maximum;
      const parts = ['string'];
      if (pattern) parts.push(`matching \`${pattern.source}\``);
      if (min !== undefined && min > 1) parts.push(`at least ${min} characters`);
      if (max !== undefined) parts.push(`at most ${max} characters`);
      if (min === 1) parts.push('non-empty');
      return parts.join(', ');
    }
    case 'number': {
      const integer = [def.format, ...checks.map((c) => c.format)].some((f) => f === 'safeint' || f === 'int32' || f === 'uint32');
      return [integer ? 'integer' : 'number', ...bounds(checks, '')].join(', ');
    }
    case 'boolean':
      return 'boolean';
    case 'enum':
      return `one of ${Object.values(def.entries ?? {}).map((v) => `\`${JSON.stringify(v)}\``).join(', ')}`;
    case 'literal':
      return (def.values ?? []).map((v) => `\`${JSON.stringify(v)}\``).join(', ');
    case 'array': {
      const min = checks.find((c) => c.check === 'min_length')?.minimum;
      const element = field(def.element!).schema;
      const of = isObject(element) ? 'tables' : plural(typeName(element));
      return `array of ${of}${min ? ` (at least ${min})` : ''}`;
    }
    case 'pipe':
      if (def.out === DOMAIN_TRANSFORM) return 'domain name';
      return typeName(def.in!);
    case 'object':
      return 'table';
    default:
      return def.type;
  }
}

/** 'string' → 'strings', 'one of "a", "b"' → 'values, each one of "a", "b"'. */
function plural(type: string): string {
  if (type.startsWith('one of ')) return `values, each ${type}`;
  const [head, ...rest] = type.split(', ');
  return [`${head}s`, ...rest].join(', ');
}

function tomlValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') return fmt(value);
  if (Array.isArray(value)) return `[${value.map(tomlValue).join(', ')}]`;
  if (value !== null && typeof value === 'object') {
    return `{ ${Object.entries(value).map(([k, v]) => `${k} = ${tomlValue(v)}`).join(', ')} }`;
  }
  return String(value);
}

function defaultCell(presence: Field['presence'], schema: Schema): string {
  if (presence.kind === 'required') return '**required**';
  if (presence.kind === 'optional') return '—';
  const { value } = presence;
  if (Array.isArray(value) && value.some((v) => v !== null && typeof v === 'object')) return 'see description';
  if (isObject(schema)) return '';
  return `\`${tomlValue(value)}\``;
}

/** Table cell text: no pipes or newlines, and XML like <policy-violation/> shown, not parsed as HTML. */
const cell = (text: string) => text.replaceAll('|', '\\|').replaceAll('\n', ' ').replaceAll('<', '&lt;').replaceAll('>', '&gt;');

interface Row {
  key: string;
  type: string;
  default: string;
  description: string;
}

/** The rows of a table's keys; nested tables are flattened into dotted keys. */
function rows(object: Schema, prefix = ''): Row[] {
  const out: Row[] = [];
  for (const [key, child] of Object.entries(defOf(object).shape ?? {})) {
    const f = field(child);
    const name = `${prefix}${key}`;
    if (isObject(f.schema)) {
      out.push(...rows(f.schema, `${name}.`));
    } else {
      out.push({ key: name, type: typeName(f.schema), default: defaultCell(f.presence, f.schema), description: f.description ?? '' });
    }
  }
  return out;
}

function table(rowList: Row[]): string {
  if (rowList.length === 0) return 'No keys.\n';
  const lines = ['| Key | Type | Default | Description |', '|---|---|---|---|'];
  for (const row of rowList) lines.push(`| \`${row.key}\` | ${cell(row.type)} | ${cell(row.default)} | ${cell(row.description)} |`);
  return `${lines.join('\n')}\n`;
}

function section(heading: string, schema: Schema, about?: string): string {
  const f = field(schema);
  const text = about ?? f.description;
  const description = text ? `${text}\n\n` : '';
  return `## \`${heading}\`\n\n${description}${table(rows(f.schema))}`;
}

function moduleSection(definition: ModuleDefinition): string {
  const on = definition.enabledByDefault !== false;
  const status = on
    ? 'On by default (`enabled = false` switches it off).'
    : 'Off by default: a `[modules.' + definition.name + ']` table switches it on.';
  const keys = rows(moduleTableSchema(definition));
  const ordered = [...keys.filter((r) => r.key === 'enabled'), ...keys.filter((r) => r.key !== 'enabled')];
  return `### \`[modules.${definition.name}]\`\n\n${status}\n\n${table(ordered)}`;
}

/** The whole reference, for a module list (the server's by default). */
export function generateReference(modules: readonly ModuleDefinition[] = allModules): string {
  const shape = defOf(field(buildConfigSchema(modules)).schema).shape!;
  const listeners = field(defOf(field(shape.listen).schema).shape!.c2s);
  const hostConfigElement = field(defOf(field(shape.host_config).schema).element!).schema;
  const parts = [
    `# Configuration reference

<!-- Generated from src/config/schema.ts and the module schemas by \`${REGENERATE_COMMAND}\`. Do not edit. -->

Meerkat reads one TOML file: \`meerkat start --config FILE\`, or \`./meerkat.toml\` when no
file is named and it exists; without either it runs on the built-in defaults below (a
server for \`localhost\` on SQLite, data in \`./data\`). \`meerkat.example.toml\` is an
annotated example serving two domains.

- Every key is optional unless marked **required**; unknown keys and tables are errors,
  and an invalid value stops start-up with a message naming the key, e.g.
  \`meerkat.toml: listen.c2s[0].port: must be an integer between 0 and 65535\`.
- Durations are in seconds (fractions allowed), sizes in bytes.
- Relative paths are relative to the config file's folder (the working directory when there
  is no file); \`storage.sqlite.path\` is relative to \`general.data_dir\`.
- Dotted keys (\`tls.mode\`) may equally be written as sub-tables (\`[listen.c2s.tls]\`).
`,
    section('[general]', shape.general),
    section('[tls]', shape.tls),
    section('[[listen.c2s]]', defOf(listeners.schema).element!, listeners.description),
    section('[auth]', shape.auth),
    section('[stream_management]', shape.stream_management),
    section('[storage]', shape.storage),
    `## \`[modules.<name>]\`

${field(shape.modules).description} Every module table also takes \`enabled\` (boolean): a
module is loaded when its table is present and does not say \`enabled = false\`, or, without
a table, when it is on by default. Unknown module names are errors.
`,
    ...modules.map(moduleSection),
    `## \`[[host_config]]\`

${field(shape.host_config).description}

${table(rows(hostConfigElement).filter((row) => row.key === 'host'))}
\`[host_config.modules.<name>]\`: ${field(defOf(hostConfigElement).shape!.modules).description}

\`\`\`toml
[[host_config]]
host = "guests.example.org"
  [host_config.modules.register]   # in-band registration on this domain only
  min_password_length = 12
\`\`\`
`,
  ];
  return parts.join('\n');
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const text = generateReference();
  if (process.argv.includes('--write')) writeFileSync(REFERENCE_FILE, text);
  else process.stdout.write(text);
}
