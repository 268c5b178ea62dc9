/**
 * PostgreSQL for the benchmark variants that use it: a fresh schema per variant (Meerkat
 * creates it when it first opens the database, through `storage.postgres.schema`), dropped
 * afterwards; one-off statements on a short-lived connection; and a reachability check, so
 * that a machine without PostgreSQL skips those variants instead of failing the run.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** The URL with its password hidden, for logs and JSON lines. */
export function redactUrl(url: string): string {
  return url.replace(/^(postgres(?:ql)?:\/\/[^:@/]*):[^@/]*@/, '$1:***@');
}

/** A schema name nothing else uses (and that `storage.postgres.schema` accepts). */
export function freshSchemaName(): string {
  return `meerkat_bench_${randomBytes(6).toString('hex')}`;
}

/** Runs one statement on a short-lived connection, with `schema` first on the search path when given. */
export async function pgExec(url: string, text: string, schema?: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, ...(schema === undefined ? {} : { options: `-c search_path=${schema}` }) });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

export function dropSchema(url: string, schema: string): Promise<void> {
  return pgExec(url, `drop schema if exists "${schema}" cascade`);
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ETIMEDOUT']);

/**
 * Undefined when PostgreSQL answers at `url`; the reason when nothing listens there (the
 * caller skips). Any other failure (authentication, a missing database) is thrown: that is a
 * configuration mistake, not a missing server.
 */
export async function unreachable(url: string): Promise<string | undefined> {
  try {
    await pgExec(url, 'select 1');
    return undefined;
  } catch (err) {
    const code = (err as { code?: string }).code;
    const codes = err instanceof AggregateError ? err.errors.map((e: { code?: string }) => e.code) : [code];
    if (codes.some((c) => c !== undefined && UNREACHABLE.has(c))) return `PostgreSQL not reachable at ${redactUrl(url)} (${codes.join(', ')}; see --postgres-url)`;
    throw new Error(`PostgreSQL at ${redactUrl(url)}: ${(err as Error).message}`);
  }
}
