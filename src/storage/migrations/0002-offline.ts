/**
 * Offline messages (XEP-0160). One table-wide sequence gives every account's rows their
 * arrival order; the (domain, username, seq) index makes an account's queue one range scan,
 * and its removal one range delete. Rows hold whole stanzas, so the table keeps its rowid.
 */
import { sql, type Kysely } from 'kysely';
import type { MigrationContext } from './migration.ts';

export async function up(db: Kysely<any>, ctx: MigrationContext): Promise<void> {
  const { bigint, key } = ctx.types;
  await ctx.strict(db.schema.createTable('offline_messages')
    .addColumn('seq', ctx.dialect === 'sqlite' ? 'integer' : bigint, (c) =>
      ctx.dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('domain', key, (c) => c.notNull())
    .addColumn('username', key, (c) => c.notNull())
    .addColumn('received_at', bigint, (c) => c.notNull())
    .addColumn('stanza', 'text', (c) => c.notNull())
    .addCheckConstraint('offline_messages_stanza_check', sql`length(stanza) > 0`)).execute();
  await db.schema.createIndex('offline_messages_owner_idx').on('offline_messages').columns(['domain', 'username', 'seq']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('offline_messages').execute();
}
