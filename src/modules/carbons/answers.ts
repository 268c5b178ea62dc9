/**
 * XEP-0280 §6.1: an error is copied when it answers a message that was copied. An error
 * carries the id of the message it answers and comes from (or goes to) the JID that message
 * went to (came from), so it is recognised by that pair, per account. Only the latest
 * messages are remembered (an error comes right after its message, or not at all), and only
 * while the account has a session, so this stays small.
 */
export class RecentMessages {
  private readonly byAccount = new Map<string, Set<string>>();
  private readonly perAccount: number;

  constructor(perAccount: number) {
    this.perAccount = perAccount;
  }

  /** A copied message between `account` and `peer` (bare JIDs) with this id. */
  remember(account: string, peer: string, id: string): void {
    let recent = this.byAccount.get(account);
    if (recent === undefined) {
      recent = new Set();
      this.byAccount.set(account, recent);
    }
    const key = `${peer} ${id}`;
    recent.delete(key);
    recent.add(key);
    // Insertion order: the first is the oldest.
    if (recent.size > this.perAccount) recent.delete(recent.values().next().value!);
  }

  /** Does an error from or to `peer` with this id answer a remembered message? Forgets it. */
  answers(account: string, peer: string, id: string): boolean {
    const recent = this.byAccount.get(account);
    if (recent === undefined || !recent.delete(`${peer} ${id}`)) return false;
    if (recent.size === 0) this.byAccount.delete(account);
    return true;
  }

  forget(account: string): void {
    this.byAccount.delete(account);
  }
}
