import type { CompiledQuery } from 'kysely';

/**
 * A query Kysely builds and compiles once, then runs with new parameters. Building and
 * compiling (a tree of frozen nodes, then the SQL text) costs more than the primary-key read
 * itself, which matters for the reads every login makes. `parameters` go in the order of the
 * query's placeholders: the order the values appear in the builder.
 */
export function compiledOnce<R>(compiled: CompiledQuery<R>): (parameters: readonly unknown[]) => CompiledQuery<R> {
  return (parameters) => ({ ...compiled, parameters });
}
