/**
 * `meerkat archive purge`: deletes archived messages older than a date, straight against the
 * configured storage (the store deletes in short transactions, so the server may be running).
 */
import type { Config } from '../config/schema.ts';
import { CommandError, UsageError } from './errors.ts';
import type { Output } from './main.ts';
import { withStorage } from './storage.ts';
import { accountOf } from './user.ts';

/** A calendar date (midnight UTC) or a date-time with an explicit zone: nothing left to the local clock. */
const ISO_INSTANT = /^(\d{4})-(\d{2})-(\d{2})(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2}))?$/;

/** The instant `--before` names, in ms since the epoch. */
export function parseBefore(input: string | undefined, now = Date.now()): number {
  if (input === undefined) throw new UsageError('missing --before DATE for meerkat archive purge', 'archive');
  const match = ISO_INSTANT.exec(input);
  const at = match === null ? NaN : Date.parse(input);
  // Date.parse rolls 2025-02-31 over into March: the day must exist as written.
  const day = match === null ? undefined : new Date(Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3])));
  if (Number.isNaN(at) || day === undefined || day.getUTCDate() !== Number(match![3]) || day.getUTCMonth() !== Number(match![2]) - 1) {
    throw new UsageError(`invalid date ${JSON.stringify(input)}: expected 2025-01-31 or 2025-01-31T12:00:00Z`, 'archive');
  }
  if (at > now) throw new CommandError(`${input} is in the future: that would delete messages still arriving`);
  return at;
}

export async function archivePurge(config: Config, before: string | undefined, jid: string | undefined, io: Output): Promise<void> {
  const timestamp = parseBefore(before);
  const owner = jid === undefined ? undefined : accountOf(config, jid);
  const count = await withStorage(config, (storage) => storage.archive.purgeBefore(timestamp, owner));
  const whose = owner === undefined ? '' : ` of ${owner.username}@${owner.domain}`;
  io.out(`deleted ${count} archived message${count === 1 ? '' : 's'}${whose} received before ${new Date(timestamp).toISOString()}`);
}
